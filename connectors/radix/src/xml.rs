//! Streaming reader of the GSKO RADIX XML export (`urn:gsko:radix-export:1`).
//!
//! The file is read through any [`BufRead`] with quick-xml, one record (`<taxpayer>`,
//! `<account>`, `<liability>`, `<posting>`, `<balance>`) at a time: a record is gathered into a
//! small tree, checked, normalized and handed out before the next one is read, so memory stays
//! flat however large the export is (a single record is capped at [`MAX_RECORD_BYTES`]).
//!
//! A `<posting kind="payment">` with a `payment` attribute (the GSKO payment the ledger booked
//! it from, see `connectors/radix/src/booking.rs`) yields two records with the same version and
//! line: the posting, then a [`PaymentBooked`] naming payment, account, posting, amount and
//! value date. Pickup publishes both, so GSKO learns the ledger booked what it sent.
//!
//! Errors come at three levels:
//! - a bad record (checksum, negative amount, unknown levy, installments not summing …) becomes
//!   a [`RejectedRecord`] naming file, line, record, field and reason, and reading goes on with
//!   the next record;
//! - XML that is not well-formed mid-file becomes one rejection for the broken part and reading
//!   stops there (an XML parser cannot resynchronize reliably); the records before it count;
//! - a bad header (namespace, format version, tenant, kind, a DOCTYPE) is a [`FileError`]: the
//!   file as a whole is refused.
//!
//! quick-xml reports byte offsets; lines are counted here, in a tap between quick-xml and the
//! input that sees every consumed byte (and keeps the raw text of the current record).

use crate::{
    ExportHeader, ExportKind, FileError, FileMeta, NormalizedRecord, RecordSource, SourceItem,
    FORMAT_VERSION, NAMESPACE_V1,
};
use chrono::NaiveDate;
use gsko_model::payload::{
    AccountHolder, ContactChannel, ContactKind, Decision, HolderRole, Installment, PaymentBooked,
    TaxpayerKind,
};
use gsko_model::{
    Address, Amount, Balance, EventData, LedgerPosting, LevyKind, Liability, Nip, Nrb, Pesel,
    PostingKind, Regon, RejectedRecord, TaxAccount, Taxpayer, Teryt,
};
use quick_xml::events::{BytesStart, Event as XmlEvent};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::io::{BufRead, Read};

/// Largest record accepted (raw bytes). A record is a taxpayer or a liability: kilobytes at
/// most; anything larger is a broken export, and holding it would break the flat-memory promise.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// Longest record id (`id`, `account`, `taxpayer` … attributes).
pub const MAX_ID_CHARS: usize = 64;

/// A reader between quick-xml and the input that counts newlines in everything consumed and
/// keeps the consumed bytes since the last [`Tap::reset`] (the raw text of a record).
struct Tap<R> {
    inner: R,
    consumed: u64,
    newlines: u64,
    capture: Vec<u8>,
    capture_start: u64,
    capture_overflow: bool,
}

impl<R: BufRead> Tap<R> {
    fn new(inner: R) -> Self {
        Tap {
            inner,
            consumed: 0,
            newlines: 0,
            capture: Vec::new(),
            capture_start: 0,
            capture_overflow: false,
        }
    }

    fn reset(&mut self) {
        self.capture.clear();
        if self.capture.capacity() > MAX_RECORD_BYTES {
            self.capture.shrink_to(4096);
        }
        self.capture_start = self.consumed;
        self.capture_overflow = false;
    }

    /// 1-based line of a byte offset at or after the capture start (exact) or before it
    /// (approximated by the current line).
    fn line_at(&self, offset: u64) -> u64 {
        if offset >= self.capture_start && !self.capture_overflow {
            let from = usize::try_from(offset - self.capture_start)
                .unwrap_or(usize::MAX)
                .min(self.capture.len());
            let after = self.capture[from..].iter().filter(|&&b| b == b'\n').count() as u64;
            self.newlines - after + 1
        } else {
            self.newlines + 1
        }
    }
}

impl<R: BufRead> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tap<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if amt > 0 {
            // The bytes being consumed are the ones the last fill_buf returned: asking again
            // does no I/O.
            if let Ok(buf) = self.inner.fill_buf() {
                let taken = &buf[..amt.min(buf.len())];
                self.newlines += taken.iter().filter(|&&b| b == b'\n').count() as u64;
                let room = (MAX_RECORD_BYTES + 1).saturating_sub(self.capture.len());
                if taken.len() > room {
                    self.capture_overflow = true;
                }
                self.capture
                    .extend_from_slice(&taken[..taken.len().min(room)]);
            }
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// The record sections of the export, in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Taxpayers,
    Accounts,
    Liabilities,
    Postings,
    Balances,
}

impl Section {
    fn parse(name: &str) -> Option<Section> {
        Some(match name {
            "taxpayers" => Section::Taxpayers,
            "accounts" => Section::Accounts,
            "liabilities" => Section::Liabilities,
            "postings" => Section::Postings,
            "balances" => Section::Balances,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Section::Taxpayers => "taxpayers",
            Section::Accounts => "accounts",
            Section::Liabilities => "liabilities",
            Section::Postings => "postings",
            Section::Balances => "balances",
        }
    }

    fn record(self) -> &'static str {
        match self {
            Section::Taxpayers => "taxpayer",
            Section::Accounts => "account",
            Section::Liabilities => "liability",
            Section::Postings => "posting",
            Section::Balances => "balance",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InRoot,
    InSection(Section),
    AfterRoot,
    Done,
}

/// A record gathered into a tree before it is checked (records are small).
#[derive(Debug, Default)]
struct Elem {
    name: String,
    /// The element is in the export's namespace.
    in_ns: bool,
    attrs: Vec<(String, String)>,
    children: Vec<Elem>,
    text: String,
}

/// Why a record is refused: the field at fault and a sentence an admin can act on.
#[derive(Debug)]
struct Fault {
    field: Option<String>,
    reason: String,
}

impl Fault {
    fn attr(field: impl Into<String>, msg: impl std::fmt::Display) -> Fault {
        let field = field.into();
        Fault {
            reason: format!("attribute \"{field}\": {msg}"),
            field: Some(field),
        }
    }
    fn elem(field: impl Into<String>, msg: impl std::fmt::Display) -> Fault {
        let field = field.into();
        Fault {
            reason: format!("field \"{field}\": {msg}"),
            field: Some(field),
        }
    }
    fn record(msg: impl Into<String>) -> Fault {
        Fault {
            field: None,
            reason: msg.into(),
        }
    }
}

/// The outcome of gathering one record.
enum Gathered {
    Ok(Elem),
    Bad(Fault),
    /// Not well-formed: reading the file stops.
    Broken {
        line: u64,
        reason: String,
    },
}

/// Streaming [`RecordSource`] over an XML export.
pub struct XmlSource<R: BufRead> {
    reader: NsReader<Tap<R>>,
    buf: Vec<u8>,
    file: FileMeta,
    header: ExportHeader,
    state: State,
    stopped: Option<String>,
    /// The second event of the last record (a posting's [`PaymentBooked`]), handed out next.
    pending: Option<SourceItem>,
}

fn is_export_ns(r: &ResolveResult) -> bool {
    matches!(r, ResolveResult::Bound(ns) if ns.as_ref() == NAMESPACE_V1.as_bytes())
}

/// Reads the next event, detached from the reader's buffers (records are small; this keeps the
/// borrow checker out of the state machine).
fn next_event<R: BufRead>(
    reader: &mut NsReader<Tap<R>>,
    buf: &mut Vec<u8>,
) -> Result<(bool, XmlEvent<'static>), quick_xml::Error> {
    buf.clear();
    let (ns, ev) = reader.read_resolved_event_into(buf)?;
    let in_ns = is_export_ns(&ns);
    Ok((in_ns, ev.into_owned()))
}

fn local(e: &BytesStart) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

impl<R: BufRead> XmlSource<R> {
    /// Reads the header (XML declaration, root element) and checks it. `expected_tenant`, when
    /// given, must be the root's `tenant`: a file dropped into the wrong municipality's inbox is
    /// refused as a whole.
    pub fn new(
        input: R,
        file: FileMeta,
        expected_tenant: Option<&Teryt>,
    ) -> Result<Self, FileError> {
        let mut reader = NsReader::from_reader(Tap::new(input));
        reader.config_mut().trim_text(false);
        let mut buf = Vec::new();
        let header_err = |line: u64, reason: String| FileError::Header {
            file: file.name.clone(),
            line,
            reason,
        };
        let header = loop {
            let before = reader.buffer_position();
            let ev = next_event(&mut reader, &mut buf);
            let line = reader.get_ref().line_at(before);
            match ev {
                Err(quick_xml::Error::Io(e)) => {
                    return Err(FileError::Io {
                        file: file.name.clone(),
                        source: std::io::Error::new(e.kind(), e.to_string()),
                    })
                }
                Err(e) => {
                    return Err(header_err(
                        reader.get_ref().line_at(reader.error_position()),
                        format!("XML is not well-formed: {e}"),
                    ))
                }
                Ok((_, XmlEvent::Decl(d))) => {
                    if let Some(Ok(enc)) = d.encoding() {
                        let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                        if enc != "utf-8" && enc != "utf8" {
                            return Err(header_err(
                                line,
                                format!(
                                    "encoding {enc:?} is not supported: the export must be UTF-8"
                                ),
                            ));
                        }
                    }
                }
                Ok((_, XmlEvent::DocType(_))) => {
                    return Err(header_err(
                        line,
                        "DOCTYPE declarations are not allowed (no DTDs or entities in exports)"
                            .into(),
                    ))
                }
                Ok((_, XmlEvent::Comment(_) | XmlEvent::PI(_))) => {}
                Ok((_, XmlEvent::Text(t))) if t.iter().all(u8::is_ascii_whitespace) => {}
                Ok((in_ns, XmlEvent::Start(e))) => {
                    let name = local(&e);
                    if name != "radix-export" {
                        return Err(header_err(
                            line,
                            format!("root element is <{name}>, expected <radix-export>"),
                        ));
                    }
                    if !in_ns {
                        return Err(header_err(
                            line,
                            format!("root element is not in namespace {NAMESPACE_V1}"),
                        ));
                    }
                    break parse_header(&e).map_err(|r| header_err(line, r))?;
                }
                Ok((_, XmlEvent::Empty(_))) => {
                    return Err(header_err(
                        line,
                        "root element <radix-export> is empty".into(),
                    ))
                }
                Ok((_, XmlEvent::Eof)) => {
                    return Err(header_err(
                        line,
                        "file holds no <radix-export> element".into(),
                    ))
                }
                Ok((_, other)) => {
                    return Err(header_err(
                        line,
                        format!("unexpected content before the root element: {other:?}"),
                    ))
                }
            }
        };
        if let Some(expected) = expected_tenant {
            if &header.tenant != expected {
                return Err(FileError::TenantMismatch {
                    file: file.name.clone(),
                    expected: expected.clone(),
                    found: header.tenant,
                });
            }
        }
        Ok(XmlSource {
            reader,
            buf,
            file,
            header,
            state: State::InRoot,
            stopped: None,
            pending: None,
        })
    }

    pub fn file(&self) -> &FileMeta {
        &self.file
    }

    fn reject(
        &self,
        line: u64,
        record_type: &str,
        record_id: Option<String>,
        fault: Fault,
        raw: String,
    ) -> SourceItem {
        SourceItem::Rejected(Box::new(RejectedRecord {
            file: self.file.name.clone(),
            file_sha256: self.file.sha256.clone(),
            line,
            record_type: record_type.to_owned(),
            record_id,
            field: fault.field,
            reason: fault.reason,
            raw,
        }))
    }

    /// Records a break in well-formedness: one rejection, then the source is finished.
    fn broken(
        &mut self,
        line: u64,
        record_type: &str,
        record_id: Option<String>,
        reason: String,
        raw: String,
    ) -> SourceItem {
        self.state = State::Done;
        self.stopped = Some(format!("line {line}: {reason}"));
        self.reject(line, record_type, record_id, Fault::record(reason), raw)
    }

    fn raw_capture(&self, carry_lt: bool) -> String {
        let tap = self.reader.get_ref();
        let mut s = String::new();
        if carry_lt {
            s.push('<');
        }
        s.push_str(&String::from_utf8_lossy(&tap.capture));
        if tap.capture_overflow {
            s.push_str("…[truncated]");
        }
        s
    }

    /// Gathers the rest of a record whose start tag was just read.
    fn gather(&mut self, start: Elem, empty: bool) -> Gathered {
        if empty {
            return Gathered::Ok(start);
        }
        let mut stack = vec![start];
        let mut fault: Option<Fault> = None;
        loop {
            let ev = next_event(&mut self.reader, &mut self.buf);
            if self.reader.get_ref().capture_overflow && fault.is_none() {
                // Keep walking to the record's end (to resynchronize), but stop building it.
                fault = Some(Fault::record(format!(
                    "record is larger than {MAX_RECORD_BYTES} bytes"
                )));
            }
            match ev {
                Err(e) => {
                    let line = self.reader.get_ref().line_at(self.reader.error_position());
                    return Gathered::Broken {
                        line,
                        reason: format!("XML is not well-formed: {e}"),
                    };
                }
                Ok((in_ns, XmlEvent::Start(e))) => {
                    let el = elem_from(&e, in_ns, &mut fault);
                    stack.push(el);
                }
                Ok((in_ns, XmlEvent::Empty(e))) => {
                    let el = elem_from(&e, in_ns, &mut fault);
                    if let Some(top) = stack.last_mut() {
                        top.children.push(el);
                    }
                }
                Ok((_, XmlEvent::Text(_))) if fault.is_some() => {}
                Ok((_, XmlEvent::Text(t))) => match t.unescape() {
                    Ok(s) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push_str(&s);
                        }
                    }
                    Err(e) => {
                        fault.get_or_insert(Fault::record(format!("text cannot be read: {e}")));
                    }
                },
                Ok((_, XmlEvent::CData(c))) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&String::from_utf8_lossy(&c));
                    }
                }
                Ok((_, XmlEvent::End(_))) => {
                    let done = stack.pop().unwrap_or_default();
                    match stack.last_mut() {
                        Some(parent) => {
                            if fault.is_none() {
                                parent.children.push(done);
                            }
                        }
                        None => {
                            return match fault {
                                Some(f) => Gathered::Bad(f),
                                None => Gathered::Ok(done),
                            }
                        }
                    }
                }
                Ok((_, XmlEvent::DocType(_))) => {
                    let line = self.reader.get_ref().line_at(self.reader.buffer_position());
                    return Gathered::Broken {
                        line,
                        reason: "DOCTYPE inside the document".into(),
                    };
                }
                Ok((_, XmlEvent::Eof)) => {
                    let line = self.reader.get_ref().line_at(self.reader.buffer_position());
                    return Gathered::Broken {
                        line,
                        reason: "file ends inside a record (truncated export)".into(),
                    };
                }
                Ok((_, XmlEvent::Comment(_) | XmlEvent::PI(_) | XmlEvent::Decl(_))) => {}
            }
        }
    }

    fn step(&mut self) -> Result<Option<SourceItem>, FileError> {
        if let Some(item) = self.pending.take() {
            return Ok(Some(item));
        }
        loop {
            if self.state == State::Done {
                return Ok(None);
            }
            // Everything consumed from here on is the raw text of what comes next.
            let mark = self.reader.buffer_position();
            let carry_lt = {
                let tap = self.reader.get_mut();
                let carry = tap.consumed > mark;
                tap.reset();
                carry
            };
            let start_line = self.reader.get_ref().line_at(mark);
            let ev = next_event(&mut self.reader, &mut self.buf);
            let (in_ns, ev) = match ev {
                Ok(x) => x,
                Err(quick_xml::Error::Io(e)) => {
                    return Err(FileError::Io {
                        file: self.file.name.clone(),
                        source: std::io::Error::new(e.kind(), e.to_string()),
                    })
                }
                Err(e) => {
                    let line = self.reader.get_ref().line_at(self.reader.error_position());
                    let raw = self.raw_capture(carry_lt);
                    return Ok(Some(self.broken(
                        line,
                        "xml",
                        None,
                        format!("XML is not well-formed: {e}"),
                        raw,
                    )));
                }
            };
            let (start, empty) = match ev {
                XmlEvent::Start(e) => (e, false),
                XmlEvent::Empty(e) => (e, true),
                XmlEvent::End(_) => {
                    self.state = match self.state {
                        State::InSection(_) => State::InRoot,
                        _ => State::AfterRoot,
                    };
                    continue;
                }
                XmlEvent::Text(t) => {
                    if t.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let raw = String::from_utf8_lossy(&t).into_owned();
                    return Ok(Some(self.reject(
                        start_line,
                        "text",
                        None,
                        Fault::record("unexpected text between records"),
                        raw,
                    )));
                }
                XmlEvent::CData(_) => {
                    let raw = self.raw_capture(carry_lt);
                    return Ok(Some(self.reject(
                        start_line,
                        "text",
                        None,
                        Fault::record("unexpected CDATA between records"),
                        raw,
                    )));
                }
                XmlEvent::Eof => {
                    if self.state == State::AfterRoot {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    return Ok(Some(self.broken(
                        start_line,
                        "xml",
                        None,
                        "file ends before </radix-export> (truncated export)".into(),
                        String::new(),
                    )));
                }
                XmlEvent::DocType(_) => {
                    let raw = self.raw_capture(carry_lt);
                    return Ok(Some(self.broken(
                        start_line,
                        "xml",
                        None,
                        "DOCTYPE inside the document".into(),
                        raw,
                    )));
                }
                XmlEvent::Comment(_) | XmlEvent::PI(_) | XmlEvent::Decl(_) => continue,
            };
            let name = local(&start);
            match self.state {
                State::InRoot if in_ns && !empty && Section::parse(&name).is_some() => {
                    self.state = State::InSection(Section::parse(&name).expect("checked"));
                    continue;
                }
                State::InRoot if in_ns && empty && Section::parse(&name).is_some() => continue,
                _ => {}
            }
            // A record (or something in a record's place).
            let mut fault = None;
            let el = elem_from(&start, in_ns, &mut fault);
            let record_id = el
                .attr("id")
                .or_else(|| {
                    if name == "balance" {
                        el.attr("account")
                    } else {
                        None
                    }
                })
                .map(str::to_owned);
            let gathered = self.gather(el, empty);
            let raw = self.raw_capture(carry_lt);
            let record_type = name.clone();
            let el = match gathered {
                Gathered::Broken { line, reason } => {
                    return Ok(Some(self.broken(
                        line,
                        &record_type,
                        record_id,
                        reason,
                        raw,
                    )))
                }
                Gathered::Bad(f) => {
                    return Ok(Some(self.reject(
                        start_line,
                        &record_type,
                        record_id,
                        f,
                        raw,
                    )))
                }
                Gathered::Ok(el) => el,
            };
            let expected = match self.state {
                State::InSection(s) => Some(s),
                _ => None,
            };
            let result = match (expected, fault) {
                (_, Some(f)) => Err(f),
                (Some(s), None) if in_ns && name == s.record() => convert(s, &el),
                (Some(s), None) => Err(Fault::record(format!(
                    "unexpected element <{name}> in <{}>",
                    s.name()
                ))),
                (None, None) if self.state == State::AfterRoot => Err(Fault::record(format!(
                    "element <{name}> after the root element"
                ))),
                (None, None) => Err(Fault::record(format!(
                    "unexpected element <{name}> in <radix-export>"
                ))),
            };
            return Ok(Some(match result {
                Ok((data, source_version, extra)) => {
                    self.pending = extra.map(|data| {
                        SourceItem::Record(Box::new(NormalizedRecord {
                            data,
                            source_version,
                            line: start_line,
                        }))
                    });
                    SourceItem::Record(Box::new(NormalizedRecord {
                        data,
                        source_version,
                        line: start_line,
                    }))
                }
                Err(f) => self.reject(start_line, &record_type, record_id, f, raw),
            }));
        }
    }
}

impl<R: BufRead> RecordSource for XmlSource<R> {
    fn header(&self) -> &ExportHeader {
        &self.header
    }

    fn next_item(&mut self) -> Result<Option<SourceItem>, FileError> {
        self.step()
    }

    fn stopped_early(&self) -> Option<&str> {
        self.stopped.as_deref()
    }
}

impl<R: BufRead> Iterator for XmlSource<R> {
    type Item = Result<SourceItem, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

fn elem_from(e: &BytesStart, in_ns: bool, fault: &mut Option<Fault>) -> Elem {
    let mut el = Elem {
        name: local(e),
        in_ns,
        ..Elem::default()
    };
    for a in e.attributes() {
        match a {
            Ok(a) => {
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                if key == "xmlns" || key.starts_with("xmlns:") {
                    continue;
                }
                match a.unescape_value() {
                    Ok(v) => el.attrs.push((key, v.into_owned())),
                    Err(err) => {
                        fault.get_or_insert(Fault::attr(
                            key,
                            format!("value cannot be read: {err}"),
                        ));
                    }
                }
            }
            Err(err) => {
                fault.get_or_insert(Fault::record(format!(
                    "attributes of <{}> cannot be read: {err}",
                    el.name
                )));
            }
        }
    }
    el
}

fn parse_header(e: &BytesStart) -> Result<ExportHeader, String> {
    let mut fault = None;
    let el = elem_from(e, true, &mut fault);
    if let Some(f) = fault {
        return Err(f.reason);
    }
    let get = |n: &str| {
        el.attr(n)
            .ok_or_else(|| format!("attribute \"{n}\" of <radix-export> is missing"))
    };
    let version = get("format-version")?;
    if version != FORMAT_VERSION {
        return Err(format!("attribute \"format-version\": format version {version:?} is not supported (expected \"{FORMAT_VERSION}\")"));
    }
    let tenant = get("tenant")?;
    let tenant = Teryt::parse(tenant).map_err(|e| format!("attribute \"tenant\": {e}"))?;
    let kind = get("kind")?;
    let kind = ExportKind::parse(kind).ok_or_else(|| {
        format!("attribute \"kind\": unknown export kind {kind:?} (expected full or incremental)")
    })?;
    let generated_at = match el.attr("generated-at") {
        Some(g) => Some(
            chrono::DateTime::parse_from_rfc3339(g)
                .map_err(|_| format!("attribute \"generated-at\": {g:?} is not an ISO 8601 date-time with offset"))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    for (k, _) in &el.attrs {
        if !matches!(
            k.as_str(),
            "format-version" | "tenant" | "kind" | "generated-at" | "export-id"
        ) {
            return Err(format!("attribute \"{k}\" of <radix-export> is not part of format version {FORMAT_VERSION}"));
        }
    }
    Ok(ExportHeader {
        tenant,
        kind,
        export_id: el.attr("export-id").map(str::to_owned),
        generated_at,
    })
}

// ---------------------------------------------------------------------------------------------
// Checking and normalizing one record.

impl Elem {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Only the listed attributes, only the listed children (with their maximum count), all in
    /// the export's namespace and no stray text: an export that carries more than the contract
    /// is a bug to find, not data to drop silently.
    fn check_shape(
        &self,
        prefix: &str,
        attrs: &[&str],
        children: &[(&str, usize)],
    ) -> Result<(), Fault> {
        for (k, _) in &self.attrs {
            if !attrs.contains(&k.as_str()) {
                return Err(Fault::attr(format!("{prefix}{k}"), "unknown attribute"));
            }
        }
        for c in &self.children {
            if !c.in_ns {
                return Err(Fault::elem(
                    format!("{prefix}{}", c.name),
                    "element is not in the export namespace",
                ));
            }
            match children.iter().find(|(n, _)| *n == c.name) {
                None => {
                    return Err(Fault::elem(
                        format!("{prefix}{}", c.name),
                        "unknown element",
                    ))
                }
                Some((n, max)) => {
                    if self.children.iter().filter(|x| x.name == *n).count() > *max {
                        return Err(Fault::elem(
                            format!("{prefix}{n}"),
                            format!("may occur at most {max} time(s)"),
                        ));
                    }
                }
            }
        }
        if !children.is_empty() && !self.text.trim().is_empty() {
            return Err(Fault::record(format!(
                "<{}> holds unexpected text",
                self.name
            )));
        }
        Ok(())
    }

    fn req(&self, prefix: &str, name: &str) -> Result<&str, Fault> {
        self.attr(name)
            .ok_or_else(|| Fault::attr(format!("{prefix}{name}"), "is missing"))
    }

    fn child(&self, name: &str) -> Option<&Elem> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Text of an optional child element, trimmed; present but empty is an error.
    fn child_text(&self, prefix: &str, name: &str) -> Result<Option<String>, Fault> {
        match self.child(name) {
            None => Ok(None),
            Some(c) => {
                if !c.attrs.is_empty() || !c.children.is_empty() {
                    return Err(Fault::elem(
                        format!("{prefix}{name}"),
                        "must hold text only",
                    ));
                }
                let t = c.text.trim();
                if t.is_empty() {
                    return Err(Fault::elem(format!("{prefix}{name}"), "is empty"));
                }
                Ok(Some(t.to_owned()))
            }
        }
    }
}

fn id_value(field: &str, v: &str) -> Result<String, Fault> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Fault::attr(field, "is empty"));
    }
    if v.chars().count() > MAX_ID_CHARS {
        return Err(Fault::attr(
            field,
            format!("is longer than {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(v.to_owned())
}

fn version_value(v: &str) -> Result<i64, Fault> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Fault::attr(
            "version",
            format!("{v:?} is not a non-negative integer"),
        ));
    }
    v.parse::<i64>()
        .map_err(|_| Fault::attr("version", format!("{v:?} is too large")))
}

/// Amounts in the XML format: decimal złoty with a dot and at most two decimals.
fn amount_value(field: &str, v: &str) -> Result<Amount, Fault> {
    if v.contains(',') {
        return Err(Fault::attr(
            field,
            format!("amount {v:?} uses a comma; the export uses a decimal dot"),
        ));
    }
    Amount::parse_zloty(v).map_err(|e| Fault::attr(field, e))
}

fn date_value(field: &str, v: &str) -> Result<NaiveDate, Fault> {
    if v.len() != 10 {
        return Err(Fault::attr(
            field,
            format!("{v:?} is not a date YYYY-MM-DD"),
        ));
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| Fault::attr(field, format!("{v:?} is not a valid date YYYY-MM-DD")))
}

fn levy_value(v: &str) -> Result<LevyKind, Fault> {
    LevyKind::parse(v).ok_or_else(|| Fault::attr("levy", format!("unknown levy {v:?}")))
}

fn seq_value(field: &str, v: &str) -> Result<u8, Fault> {
    match v.parse::<u8>() {
        Ok(n) if n >= 1 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Fault::attr(
            field,
            format!("{v:?} is not an installment number 1-255"),
        )),
    }
}

/// A record's event and version, and for a posting that books a GSKO payment the
/// [`PaymentBooked`] event that goes out next to it (with the same version).
type Converted = (EventData, i64, Option<EventData>);

fn convert(section: Section, el: &Elem) -> Result<Converted, Fault> {
    let single = |r: Result<(EventData, i64), Fault>| r.map(|(d, v)| (d, v, None));
    match section {
        Section::Taxpayers => single(taxpayer(el)),
        Section::Accounts => single(account(el)),
        Section::Liabilities => single(liability(el)),
        Section::Postings => posting(el),
        Section::Balances => single(balance(el)),
    }
}

fn taxpayer(el: &Elem) -> Result<(EventData, i64), Fault> {
    el.check_shape(
        "",
        &["id", "version", "kind"],
        &[
            ("pesel", 1),
            ("nip", 1),
            ("regon", 1),
            ("name", 1),
            ("address", 1),
            ("contact", usize::MAX),
        ],
    )?;
    let taxpayer_id = id_value("id", el.req("", "id")?)?;
    let version = version_value(el.req("", "version")?)?;
    let kind = match el.req("", "kind")? {
        "natural" => TaxpayerKind::Natural,
        "legal" => TaxpayerKind::Legal,
        "org_unit" => TaxpayerKind::OrgUnit,
        k => return Err(Fault::attr("kind", format!("unknown taxpayer kind {k:?}"))),
    };
    // PESEL is optional (not every natural person in the register has one), but never wrong.
    let pesel = el
        .child_text("", "pesel")?
        .map(|p| Pesel::parse(&p).map_err(|e| Fault::elem("pesel", e)))
        .transpose()?;
    let nip = el
        .child_text("", "nip")?
        .map(|p| Nip::parse(&p).map_err(|e| Fault::elem("nip", e)))
        .transpose()?;
    let regon = el
        .child_text("", "regon")?
        .map(|p| Regon::parse(&p).map_err(|e| Fault::elem("regon", e)))
        .transpose()?;
    let name = el
        .child_text("", "name")?
        .ok_or_else(|| Fault::elem("name", "is missing"))?;
    let address = match el.child("address") {
        None => None,
        Some(a) => {
            let p = "address.";
            a.check_shape(
                p,
                &[],
                &[
                    ("street", 1),
                    ("building", 1),
                    ("unit", 1),
                    ("postal-code", 1),
                    ("city", 1),
                    ("simc", 1),
                    ("country", 1),
                ],
            )?;
            let simc = a.child_text(p, "simc")?;
            if let Some(s) = &simc {
                if s.len() != 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Fault::elem(
                        "address.simc",
                        format!("{s:?} is not a 7-digit SIMC id"),
                    ));
                }
            }
            let country = a
                .child_text(p, "country")?
                .unwrap_or_else(|| "PL".to_owned());
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(Fault::elem(
                    "address.country",
                    format!("{country:?} is not an ISO 3166 two-letter code"),
                ));
            }
            Some(Address {
                street: a.child_text(p, "street")?,
                building: a.child_text(p, "building")?,
                unit: a.child_text(p, "unit")?,
                postal_code: a
                    .child_text(p, "postal-code")?
                    .ok_or_else(|| Fault::elem("address.postal-code", "is missing"))?,
                city: a
                    .child_text(p, "city")?
                    .ok_or_else(|| Fault::elem("address.city", "is missing"))?,
                simc,
                country,
            })
        }
    };
    let mut contacts = Vec::new();
    for (i, c) in el
        .children
        .iter()
        .filter(|c| c.name == "contact")
        .enumerate()
    {
        let f = format!("contact[{}]", i + 1);
        c.check_shape(&format!("{f}."), &["kind"], &[])?;
        let kind = match c.attr("kind") {
            Some("email") => ContactKind::Email,
            Some("phone") => ContactKind::Phone,
            Some("epuap_box") => ContactKind::EpuapBox,
            Some("ade") => ContactKind::Ade,
            Some(k) => {
                return Err(Fault::attr(
                    format!("{f}.kind"),
                    format!("unknown contact kind {k:?}"),
                ))
            }
            None => return Err(Fault::attr(format!("{f}.kind"), "is missing")),
        };
        let value = c.text.trim();
        if value.is_empty() {
            return Err(Fault::elem(f, "is empty"));
        }
        contacts.push(ContactChannel {
            kind,
            value: value.to_owned(),
        });
    }
    let t = Taxpayer {
        taxpayer_id,
        kind,
        pesel,
        nip,
        regon,
        name,
        address,
        contacts,
    };
    Ok((EventData::TaxpayerUpserted(t), version))
}

fn account(el: &Elem) -> Result<(EventData, i64), Fault> {
    el.check_shape(
        "",
        &["id", "version", "levy"],
        &[("holder", usize::MAX), ("virtual-account", 1)],
    )?;
    let account_id = id_value("id", el.req("", "id")?)?;
    let version = version_value(el.req("", "version")?)?;
    let levy = levy_value(el.req("", "levy")?)?;
    let mut holders = Vec::new();
    for (i, h) in el
        .children
        .iter()
        .filter(|c| c.name == "holder")
        .enumerate()
    {
        let p = format!("holder[{}].", i + 1);
        h.check_shape(&p, &["taxpayer", "role"], &[])?;
        let taxpayer_id = id_value(&format!("{p}taxpayer"), h.req(&p, "taxpayer")?)?;
        let role = match h.req(&p, "role")? {
            "owner" => HolderRole::Owner,
            "co_owner" => HolderRole::CoOwner,
            r => {
                return Err(Fault::attr(
                    format!("{p}role"),
                    format!("unknown holder role {r:?}"),
                ))
            }
        };
        if holders
            .iter()
            .any(|x: &AccountHolder| x.taxpayer_id == taxpayer_id)
        {
            return Err(Fault::attr(
                format!("{p}taxpayer"),
                format!("taxpayer {taxpayer_id:?} is listed twice"),
            ));
        }
        holders.push(AccountHolder { taxpayer_id, role });
    }
    if holders.is_empty() {
        return Err(Fault::elem(
            "holder",
            "an account needs at least one holder",
        ));
    }
    let virtual_account = el
        .child_text("", "virtual-account")?
        .map(|v| Nrb::parse(&v).map_err(|e| Fault::elem("virtual-account", e)))
        .transpose()?;
    Ok((
        EventData::TaxAccountUpserted(TaxAccount {
            account_id,
            levy,
            holders,
            virtual_account,
        }),
        version,
    ))
}

fn liability(el: &Elem) -> Result<(EventData, i64), Fault> {
    el.check_shape(
        "",
        &["id", "version", "account", "levy", "year", "total"],
        &[("decision", 1), ("installment", usize::MAX)],
    )?;
    let liability_id = id_value("id", el.req("", "id")?)?;
    let version = version_value(el.req("", "version")?)?;
    let account_id = id_value("account", el.req("", "account")?)?;
    let levy = levy_value(el.req("", "levy")?)?;
    let y = el.req("", "year")?;
    let year = match y.parse::<i32>() {
        Ok(v) if (1900..=2999).contains(&v) && y.len() == 4 => v,
        _ => {
            return Err(Fault::attr(
                "year",
                format!("{y:?} is not a year 1900-2999"),
            ))
        }
    };
    let total = amount_value("total", el.req("", "total")?)?;
    let decision = match el.child("decision") {
        None => None,
        Some(d) => {
            let p = "decision.";
            d.check_shape(p, &["number", "issued-on", "delivered-on"], &[])?;
            let number = d.req(p, "number")?.trim();
            if number.is_empty() {
                return Err(Fault::attr("decision.number", "is empty"));
            }
            let issued_on = date_value("decision.issued-on", d.req(p, "issued-on")?)?;
            let delivered_on = d
                .attr("delivered-on")
                .map(|v| date_value("decision.delivered-on", v))
                .transpose()?;
            if let Some(del) = delivered_on {
                if del < issued_on {
                    return Err(Fault::attr(
                        "decision.delivered-on",
                        format!("delivered {del} before it was issued ({issued_on})"),
                    ));
                }
            }
            Some(Decision {
                number: number.to_owned(),
                issued_on,
                delivered_on,
            })
        }
    };
    let mut installments: Vec<Installment> = Vec::new();
    for (i, inst) in el
        .children
        .iter()
        .filter(|c| c.name == "installment")
        .enumerate()
    {
        let p = format!("installment[{}].", i + 1);
        inst.check_shape(&p, &["seq", "due-date", "amount"], &[])?;
        let seq = seq_value(&format!("{p}seq"), inst.req(&p, "seq")?)?;
        if installments.iter().any(|x| x.seq == seq) {
            return Err(Fault::attr(
                format!("{p}seq"),
                format!("installment {seq} is listed twice"),
            ));
        }
        let due_date = date_value(&format!("{p}due-date"), inst.req(&p, "due-date")?)?;
        let amount = amount_value(&format!("{p}amount"), inst.req(&p, "amount")?)?;
        installments.push(Installment {
            seq,
            due_date,
            amount,
        });
    }
    if installments.is_empty() {
        return Err(Fault::elem(
            "installment",
            "a liability needs at least one installment",
        ));
    }
    let sum = installments
        .iter()
        .try_fold(Amount::ZERO, |acc, i| acc.checked_add(i.amount))
        .ok_or_else(|| Fault::elem("installment", "installment amounts overflow"))?;
    if sum != total {
        return Err(Fault::attr(
            "total",
            format!("installments sum to {sum} but the liability total is {total}"),
        ));
    }
    installments.sort_by_key(|i| i.seq);
    let l = Liability {
        liability_id,
        account_id,
        levy,
        year,
        decision,
        total,
        installments,
    };
    Ok((EventData::LiabilityUpserted(l), version))
}

fn posting(el: &Elem) -> Result<Converted, Fault> {
    el.check_shape(
        "",
        &[
            "id",
            "version",
            "account",
            "kind",
            "value-date",
            "amount",
            "liability",
            "installment",
            "payment",
        ],
        &[("description", 1)],
    )?;
    let posting_id = id_value("id", el.req("", "id")?)?;
    let version = version_value(el.req("", "version")?)?;
    let account_id = id_value("account", el.req("", "account")?)?;
    let k = el.req("", "kind")?;
    let kind = PostingKind::parse(k)
        .ok_or_else(|| Fault::attr("kind", format!("unknown posting kind {k:?}")))?;
    let value_date = date_value("value-date", el.req("", "value-date")?)?;
    let amount = amount_value("amount", el.req("", "amount")?)?;
    let liability_id = el
        .attr("liability")
        .map(|v| id_value("liability", v))
        .transpose()?;
    let installment_seq = el
        .attr("installment")
        .map(|v| seq_value("installment", v))
        .transpose()?;
    if installment_seq.is_some() && liability_id.is_none() {
        return Err(Fault::attr(
            "installment",
            "an installment is named without its liability",
        ));
    }
    let payment_id = el
        .attr("payment")
        .map(|v| id_value("payment", v))
        .transpose()?;
    let description = el.child_text("", "description")?;
    // Only a payment books a GSKO payment; on other kinds the attribute is checked and ignored.
    let booked = payment_id
        .filter(|_| kind == PostingKind::Payment)
        .map(|payment_id| {
            EventData::PaymentBooked(PaymentBooked {
                payment_id,
                account_id: account_id.clone(),
                posting_id: posting_id.clone(),
                amount,
                booked_on: value_date,
            })
        });
    let p = LedgerPosting {
        posting_id,
        account_id,
        kind,
        value_date,
        amount,
        liability_id,
        installment_seq,
        description,
    };
    Ok((EventData::PostingRecorded(p), version, booked))
}

fn balance(el: &Elem) -> Result<(EventData, i64), Fault> {
    el.check_shape(
        "",
        &[
            "account",
            "version",
            "as-of",
            "principal",
            "interest",
            "costs",
            "overpayment",
        ],
        &[],
    )?;
    let account_id = id_value("account", el.req("", "account")?)?;
    let version = version_value(el.req("", "version")?)?;
    let b = Balance {
        account_id,
        as_of: date_value("as-of", el.req("", "as-of")?)?,
        principal: amount_value("principal", el.req("", "principal")?)?,
        interest: amount_value("interest", el.req("", "interest")?)?,
        costs: amount_value("costs", el.req("", "costs")?)?,
        overpayment: amount_value("overpayment", el.req("", "overpayment")?)?,
    };
    Ok((EventData::BalanceReported(b), version))
}
