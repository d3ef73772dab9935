//! A deliberately small Prometheus registry: named counters and gauges rendered in the text
//! exposition format. Components register what they count; `/metrics` renders it all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Sampler = Box<dyn Fn() -> u64 + Send + Sync>;

enum Source {
    Counter(Arc<AtomicU64>),
    Sampled(Sampler),
}

struct Metric {
    name: String,
    help: String,
    kind: &'static str,
    labels: Vec<(String, String)>,
    source: Source,
}

#[derive(Default)]
pub struct Registry {
    metrics: Mutex<Vec<Metric>>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Registers (or returns the existing) counter with these labels.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Arc<AtomicU64> {
        let mut m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(existing) = m.iter().find(|x| x.name == name && x.labels == labels) {
            if let Source::Counter(c) = &existing.source {
                return c.clone();
            }
        }
        let c = Arc::new(AtomicU64::new(0));
        m.push(Metric {
            name: name.to_owned(),
            help: help.to_owned(),
            kind: "counter",
            labels,
            source: Source::Counter(c.clone()),
        });
        c
    }

    /// Registers a value read when `/metrics` is scraped (a counter kept elsewhere, or a gauge).
    pub fn sampled(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
        f: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        let mut m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        m.push(Metric {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            labels,
            source: Source::Sampled(Box::new(f)),
        });
    }

    pub fn render(&self) -> String {
        let m = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        names.dedup();
        for name in names {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let family: Vec<&Metric> = m.iter().filter(|x| x.name == name).collect();
            out.push_str(&format!("# HELP {name} {}", family[0].help));
            out.push('\n');
            out.push_str(&format!("# TYPE {name} {}", family[0].kind));
            out.push('\n');
            for x in family {
                let v = match &x.source {
                    Source::Counter(c) => c.load(Ordering::Relaxed),
                    Source::Sampled(f) => f(),
                };
                if x.labels.is_empty() {
                    out.push_str(&format!("{name} {v}"));
                    out.push('\n');
                } else {
                    let l: Vec<String> = x
                        .labels
                        .iter()
                        .map(|(k, v)| {
                            format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                        })
                        .collect();
                    out.push_str(&format!("{name}{{{}}} {v}", l.join(",")));
                    out.push('\n');
                }
            }
        }
        out
    }
}
