//! The queues and bindings GSKO declares on start (and ships as RabbitMQ definitions).

/// A durable quorum queue bound to one of the exchanges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub exchange: crate::Exchange,
    /// Topic binding patterns, e.g. `pl.gsko.#` or `#.1465011`.
    pub bindings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub queues: Vec<QueueSpec>,
    /// Delays of the retry ladder; a message that failed this many times is parked.
    pub retry_ladder: Vec<std::time::Duration>,
}

/// The projector's queue: every event, every tenant.
pub const PROJECTOR_QUEUE: &str = "gsko.projector";
/// The RADIX connector's queue of `payment.book` commands (all tenants).
pub const BOOKING_QUEUE: &str = "gsko.radix.book";
/// The EZD connector's queue of `letter.register` commands (all tenants).
pub const REGISTER_QUEUE: &str = "gsko.ezd.register";
/// The delivery service's queue of `decision.deliver` commands (all tenants; ePUAP or
/// e-Doręczenia is chosen per tenant and recipient).
pub const DELIVERY_QUEUE: &str = "gsko.delivery";
/// Where messages that keep failing wait for an admin.
pub const PARKING_QUEUE: &str = "gsko.parked";

impl Default for Topology {
    fn default() -> Self {
        Topology {
            queues: vec![
                QueueSpec {
                    name: PROJECTOR_QUEUE.to_owned(),
                    exchange: crate::Exchange::Events,
                    bindings: vec!["pl.gsko.#".to_owned()],
                },
                QueueSpec {
                    name: BOOKING_QUEUE.to_owned(),
                    exchange: crate::Exchange::Commands,
                    bindings: vec!["pl.gsko.payment.book.#".to_owned()],
                },
                QueueSpec {
                    name: REGISTER_QUEUE.to_owned(),
                    exchange: crate::Exchange::Commands,
                    bindings: vec!["pl.gsko.letter.register.#".to_owned()],
                },
                QueueSpec {
                    name: DELIVERY_QUEUE.to_owned(),
                    exchange: crate::Exchange::Commands,
                    bindings: vec!["pl.gsko.decision.deliver.#".to_owned()],
                },
            ],
            retry_ladder: crate::default_retry_ladder(),
        }
    }
}
