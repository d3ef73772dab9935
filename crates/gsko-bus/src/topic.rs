//! AMQP topic-exchange matching, for the in-process bus.
//!
//! Kept byte-for-byte faithful to RabbitMQ so a binding that works in embedded mode works in
//! production: words are separated by `.`, `*` matches exactly one word, `#` matches zero or
//! more words, and the empty routing key has no words at all.

fn words(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('.').collect()
    }
}

/// Whether `routing_key` matches the binding `pattern`.
pub(crate) fn matches(pattern: &str, routing_key: &str) -> bool {
    let p = words(pattern);
    let k = words(routing_key);
    match_words(&p, &k)
}

fn match_words(p: &[&str], k: &[&str]) -> bool {
    match p.split_first() {
        None => k.is_empty(),
        Some((&"#", rest)) => {
            // `#` swallows 0..=k.len() words; collapse runs of `#` to keep this linear-ish.
            if rest.first() == Some(&"#") {
                return match_words(rest, k);
            }
            (0..=k.len()).any(|i| match_words(rest, &k[i..]))
        }
        Some((&w, rest)) => match k.split_first() {
            Some((&kw, krest)) => (w == "*" || w == kw) && match_words(rest, krest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn amqp_topic_semantics() {
        assert!(matches(
            "pl.gsko.#",
            "pl.gsko.radix.liability.upserted.1465011"
        ));
        assert!(matches("pl.gsko.#", "pl.gsko"));
        assert!(!matches("pl.gsko.#", "pl.gskox.a"));
        assert!(matches("#.1465011", "pl.gsko.x.1465011"));
        assert!(matches("#.1465011", "1465011"));
        assert!(!matches("#.1465011", "pl.gsko.x.1465012"));
        assert!(matches("*", "a"));
        assert!(!matches("*", "a.b"));
        assert!(!matches("*", ""));
        assert!(matches("#", ""));
        assert!(matches("#", "a.b.c"));
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.c"));
        assert!(matches("a.#.c", "a.c"));
        assert!(matches("a.#.#.c", "a.x.y.c"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("a..b", "a..b"));
        assert!(matches("a.*.b", "a..b"));
    }
}
