//! The deployment's namespace (`NATS_NAMESPACE`): one prefix for every subject, stream and
//! consumer, so deployments (and tests) share NATS servers without meeting.

/// The deployment's prefix for subjects and stream names (`NATS_NAMESPACE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn new(ns: impl Into<String>) -> Self {
        Namespace(ns.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A full subject: `orders.cmd.place` becomes `{ns}.orders.cmd.place`.
    pub fn subject(&self, relative: &str) -> String {
        if self.0.is_empty() {
            relative.to_owned()
        } else {
            format!("{}.{relative}", self.0)
        }
    }

    /// Strips the namespace from a full subject.
    pub fn relative<'a>(&self, subject: &'a str) -> &'a str {
        if self.0.is_empty() {
            subject
        } else {
            subject
                .strip_prefix(self.0.as_str())
                .and_then(|s| s.strip_prefix('.'))
                .unwrap_or(subject)
        }
    }

    /// A stream or consumer name: `ORDERS_CMD` becomes `{ns}_ORDERS_CMD`.
    pub fn name(&self, base: &str) -> String {
        if self.0.is_empty() {
            base.to_owned()
        } else {
            format!("{}_{base}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_prefix_subjects_and_names() {
        let ns = Namespace::new("t1");
        assert_eq!(ns.subject("orders.cmd.place"), "t1.orders.cmd.place");
        assert_eq!(ns.relative("t1.orders.cmd.place"), "orders.cmd.place");
        assert_eq!(ns.name("ORDERS_CMD"), "t1_ORDERS_CMD");
        let none = Namespace::default();
        assert_eq!(none.subject("a.b"), "a.b");
        assert_eq!(none.name("X"), "X");
    }
}
