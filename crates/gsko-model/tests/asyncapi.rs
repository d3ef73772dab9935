//! The published AsyncAPI contract names every message type GSKO publishes, points at a schema
//! file that exists, and puts each type on the right exchange: events on `gsko.events`, commands
//! ([`MessageType::is_command`]) on `gsko.commands` and in the queue of the connector that
//! consumes them.
//!
//! The document is read with a small reader for the block-style YAML subset it uses (mappings,
//! `- ` lists, plain and quoted scalars, `|` block scalars), because this crate has no YAML
//! dependency; a construct it does not know makes the test fail loudly rather than pass.

use gsko_model::MessageType;
use std::path::{Path, PathBuf};

const EVENTS_EXCHANGE: &str = "gsko.events";
const COMMANDS_EXCHANGE: &str = "gsko.commands";

#[derive(Debug)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    List(Vec<Yaml>),
    Scalar(String),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn at(&self, path: &[&str]) -> Option<&Yaml> {
        path.iter().try_fold(self, |node, key| node.get(key))
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        match self.at(path)? {
            Yaml::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn entries(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(m) => m,
            _ => &[],
        }
    }

    fn items(&self) -> &[Yaml] {
        match self {
            Yaml::List(l) => l,
            _ => &[],
        }
    }
}

struct Reader {
    /// (indent, content) of every line, content without the indentation.
    lines: Vec<(usize, String)>,
    pos: usize,
}

impl Reader {
    fn parse(text: &str) -> Yaml {
        let lines = text
            .lines()
            .map(|l| {
                assert!(!l.starts_with('\t'), "tab indentation: {l:?}");
                let content = l.trim_start_matches(' ');
                (l.len() - content.len(), content.trim_end().to_owned())
            })
            .collect();
        let mut r = Reader { lines, pos: 0 };
        r.skip_insignificant();
        let indent = r.lines.get(r.pos).map_or(0, |l| l.0);
        let doc = r.node(indent);
        r.skip_insignificant();
        assert!(
            r.pos == r.lines.len(),
            "asyncapi.yaml: cannot read line {}: {:?}",
            r.pos + 1,
            r.lines[r.pos].1
        );
        doc
    }

    fn skip_insignificant(&mut self) {
        while self
            .lines
            .get(self.pos)
            .is_some_and(|(_, c)| c.is_empty() || c.starts_with('#'))
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<(usize, String)> {
        self.skip_insignificant();
        self.lines.get(self.pos).cloned()
    }

    fn node(&mut self, indent: usize) -> Yaml {
        match self.peek() {
            Some((i, c)) if i == indent && (c == "-" || c.starts_with("- ")) => self.list(indent),
            Some((i, _)) if i == indent => self.map(indent),
            other => panic!("asyncapi.yaml: expected a block at indent {indent}, got {other:?}"),
        }
    }

    fn list(&mut self, indent: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some((i, c)) = self.peek() {
            if i != indent || !(c == "-" || c.starts_with("- ")) {
                break;
            }
            let rest = c[1..].trim_start().to_owned();
            if rest.is_empty() {
                self.pos += 1;
                let child = self.peek().map_or(indent + 2, |l| l.0);
                assert!(child > indent, "empty list item at line {}", self.pos);
                items.push(self.node(child));
            } else if split_key(&rest).is_some() {
                // `- key: value` opens a mapping whose keys line up with `key`.
                let child = indent + (c.len() - rest.len());
                self.lines[self.pos] = (child, rest);
                items.push(self.map(child));
            } else {
                self.pos += 1;
                items.push(Yaml::Scalar(scalar(&rest)));
            }
        }
        Yaml::List(items)
    }

    fn map(&mut self, indent: usize) -> Yaml {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        while let Some((i, c)) = self.peek() {
            if i < indent {
                break;
            }
            assert!(
                i == indent,
                "asyncapi.yaml line {}: unexpected indentation",
                self.pos + 1
            );
            if c == "-" || c.starts_with("- ") {
                break;
            }
            let (key, value) = split_key(&c).unwrap_or_else(|| {
                panic!(
                    "asyncapi.yaml line {}: not `key: value`: {c:?}",
                    self.pos + 1
                )
            });
            self.pos += 1;
            let node = if value.is_empty() {
                match self.peek() {
                    Some((j, _)) if j > indent => self.node(j),
                    Some((j, n)) if j == indent && (n == "-" || n.starts_with("- ")) => {
                        self.list(indent)
                    }
                    _ => Yaml::Scalar(String::new()),
                }
            } else if matches!(value.as_str(), "|" | "|-" | "|+" | ">" | ">-" | ">+") {
                self.block_scalar(indent)
            } else {
                assert!(
                    !value.starts_with('{') && !value.starts_with('['),
                    "asyncapi.yaml: flow collections are not read by this test: {c:?}"
                );
                Yaml::Scalar(scalar(&value))
            };
            assert!(
                entries.iter().all(|(k, _)| *k != key),
                "asyncapi.yaml: duplicate key {key:?}"
            );
            entries.push((key, node));
        }
        Yaml::Map(entries)
    }

    /// The lines of a `|` or `>` scalar: everything indented deeper than its key, blank lines
    /// included (the exact folding does not matter to these checks).
    fn block_scalar(&mut self, indent: usize) -> Yaml {
        let mut text = Vec::new();
        while let Some((i, c)) = self.lines.get(self.pos) {
            if !c.is_empty() && *i <= indent {
                break;
            }
            text.push(c.clone());
            self.pos += 1;
        }
        Yaml::Scalar(text.join("\n").trim_end().to_owned())
    }
}

/// `key: value` or `key:`; a key may be quoted.
fn split_key(line: &str) -> Option<(String, String)> {
    let (key, rest) = if let Some(q @ ('\'' | '"')) = line.chars().next() {
        let end = line[1..].find(q)? + 1;
        (scalar(&line[..=end]), &line[end + 1..])
    } else {
        let at = line
            .find(": ")
            .or_else(|| line.ends_with(':').then(|| line.len() - 1))?;
        (line[..at].to_owned(), &line[at..])
    };
    let value = rest.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    Some((key, value.trim().to_owned()))
}

fn scalar(s: &str) -> String {
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        assert!(
            !inner.contains('\\'),
            "escapes in double-quoted scalars are not read by this test: {s:?}"
        );
        inner.to_owned()
    } else {
        // A plain scalar ends at a comment.
        s.split(" #").next().unwrap_or(s).trim().to_owned()
    }
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn load() -> (String, Yaml) {
    let text = std::fs::read_to_string(schemas_dir().join("asyncapi.yaml")).unwrap();
    let doc = Reader::parse(&text);
    (text, doc)
}

/// The component key (in `components/messages`) of a message type.
fn component_of(doc: &Yaml, t: MessageType) -> Option<&str> {
    let components = doc.at(&["components", "messages"])?.entries();
    let keys: Vec<&str> = components
        .iter()
        .filter(|(_, m)| m.str_at(&["name"]) == Some(t.type_name()))
        .map(|(k, _)| k.as_str())
        .collect();
    assert!(
        keys.len() <= 1,
        "{} is named by several components: {keys:?}",
        t.type_name()
    );
    keys.first().copied()
}

/// Addresses of the channels whose `messages` reference component `key`.
fn channels_listing<'a>(doc: &'a Yaml, key: &str) -> Vec<(&'a str, &'a Yaml)> {
    let reference = format!("#/components/messages/{key}");
    doc.at(&["channels"])
        .map_or(&[][..], Yaml::entries)
        .iter()
        .filter(|(_, ch)| {
            ch.at(&["messages"])
                .map_or(&[][..], Yaml::entries)
                .iter()
                .any(|(_, m)| m.str_at(&["$ref"]) == Some(reference.as_str()))
        })
        .map(|(_, ch)| (ch.str_at(&["address"]).unwrap_or(""), ch))
        .collect()
}

#[test]
fn the_yaml_reader_reads_what_it_is_given() {
    let doc = Reader::parse(
        "a: 1\nb:\n  c: 'it''s'\n  d: |\n    line one\n\n    line two\n  e:\n    - x: \"y\"\n      z: w\n    - plain # comment\nf: last\n",
    );
    assert_eq!(doc.str_at(&["a"]), Some("1"));
    assert_eq!(doc.str_at(&["b", "c"]), Some("it's"));
    assert_eq!(doc.str_at(&["b", "d"]), Some("line one\n\nline two"));
    let e = doc.at(&["b", "e"]).unwrap().items();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].str_at(&["x"]), Some("y"));
    assert_eq!(e[0].str_at(&["z"]), Some("w"));
    assert!(matches!(&e[1], Yaml::Scalar(s) if s == "plain"));
    assert_eq!(doc.str_at(&["f"]), Some("last"));
}

#[test]
fn asyncapi_lists_every_message_type_with_its_schema() {
    let (text, doc) = load();
    assert_eq!(doc.str_at(&["asyncapi"]), Some("3.0.0"));
    for t in MessageType::ALL {
        let key = component_of(&doc, t)
            .unwrap_or_else(|| panic!("{} missing from asyncapi.yaml", t.type_name()));
        let reference = format!("./messages/{}", t.schema_file());
        assert_eq!(
            doc.str_at(&["components", "messages", key, "payload", "$ref"]),
            Some(reference.as_str()),
            "component {key} must take its payload from {reference}"
        );
        assert!(
            schemas_dir()
                .join("messages")
                .join(t.schema_file())
                .exists(),
            "{} does not exist",
            t.schema_file()
        );
    }
    let components = doc.at(&["components", "messages"]).unwrap().entries();
    for (key, m) in components {
        let name = m.str_at(&["name"]).unwrap_or("");
        assert!(
            MessageType::from_type_name(name).is_some(),
            "asyncapi.yaml component {key} names {name:?}, a type the model does not publish"
        );
    }
    assert_eq!(components.len(), MessageType::ALL.len());
    assert_eq!(
        text.matches("name: pl.gsko.").count(),
        MessageType::ALL.len(),
        "asyncapi.yaml names a type the model does not publish"
    );
}

#[test]
fn events_are_on_the_events_channel_and_commands_on_the_commands_channel() {
    let (_, doc) = load();
    for (address, exchange) in [
        (EVENTS_EXCHANGE, EVENTS_EXCHANGE),
        (COMMANDS_EXCHANGE, COMMANDS_EXCHANGE),
    ] {
        let channel = doc
            .at(&["channels"])
            .unwrap()
            .entries()
            .iter()
            .find(|(_, ch)| ch.str_at(&["address"]) == Some(address))
            .unwrap_or_else(|| panic!("no channel with address {address}"));
        assert_eq!(
            channel.1.str_at(&["bindings", "amqp", "exchange", "name"]),
            Some(exchange)
        );
        assert_eq!(
            channel.1.str_at(&["bindings", "amqp", "exchange", "type"]),
            Some("topic")
        );
    }
    let mut commands = 0;
    for t in MessageType::ALL {
        let key = component_of(&doc, t).unwrap();
        let listed: Vec<&str> = channels_listing(&doc, key).iter().map(|c| c.0).collect();
        let (right, wrong) = if t.is_command() {
            commands += 1;
            (COMMANDS_EXCHANGE, EVENTS_EXCHANGE)
        } else {
            (EVENTS_EXCHANGE, COMMANDS_EXCHANGE)
        };
        assert!(
            listed.contains(&right),
            "{} must be listed under the {right} channel (listed under {listed:?})",
            t.type_name()
        );
        assert!(
            !listed.contains(&wrong),
            "{} must not be listed under the {wrong} channel",
            t.type_name()
        );
        if t.is_command() {
            // A command is consumed from a queue bound to the commands exchange with a key
            // that matches its type.
            let queues: Vec<&Yaml> = channels_listing(&doc, key)
                .into_iter()
                .filter(|(_, ch)| ch.str_at(&["bindings", "amqp", "is"]) == Some("queue"))
                .map(|(_, ch)| ch)
                .collect();
            assert!(
                !queues.is_empty(),
                "{}: no queue consumes it",
                t.type_name()
            );
            for q in queues {
                let description = q.str_at(&["description"]).unwrap_or("");
                // `pl.gsko.payment.book.#` for `pl.gsko.payment.book.v1`: every version.
                let family = t.type_name().rsplit_once('.').unwrap().0;
                assert!(
                    description.contains(COMMANDS_EXCHANGE)
                        && description.contains(&format!("{family}.#")),
                    "the queue of {} must say it is bound to {COMMANDS_EXCHANGE} with {family}.#",
                    t.type_name()
                );
            }
        }
    }
    assert!(commands > 0, "the model has no command to check");
}

#[test]
fn operations_refer_to_channels_and_messages_that_exist() {
    let (_, doc) = load();
    let channels = doc.at(&["channels"]).unwrap();
    let components = doc.at(&["components", "messages"]).unwrap();
    for (name, ch) in channels.entries() {
        for (m, r) in ch.at(&["messages"]).map_or(&[][..], Yaml::entries) {
            let r = r.str_at(&["$ref"]).unwrap_or("");
            let target = r.strip_prefix("#/components/messages/").unwrap_or("");
            assert!(
                components.get(target).is_some(),
                "channel {name} message {m}: {r:?} is not a component"
            );
        }
    }
    let operations = doc.at(&["operations"]).unwrap().entries();
    let mut used = Vec::new();
    for (name, op) in operations {
        assert!(
            matches!(op.str_at(&["action"]), Some("send" | "receive")),
            "operation {name}: action"
        );
        let r = op.str_at(&["channel", "$ref"]).unwrap_or("");
        let channel = r.strip_prefix("#/channels/").unwrap_or("");
        assert!(
            channels.get(channel).is_some(),
            "operation {name}: {r:?} is not a channel"
        );
        used.push(channel);
        for m in op.at(&["messages"]).map_or(&[][..], Yaml::items) {
            let r = m.str_at(&["$ref"]).unwrap_or("");
            let prefix = format!("#/channels/{channel}/messages/");
            let key = r.strip_prefix(&prefix).unwrap_or_else(|| {
                panic!("operation {name}: message {r:?} is not one of its channel's")
            });
            assert!(
                channels.at(&[channel, "messages", key]).is_some(),
                "operation {name}: {r:?} does not exist"
            );
        }
    }
    for (name, _) in channels.entries() {
        assert!(
            used.contains(&name.as_str()),
            "no operation uses channel {name}"
        );
    }
}
