//! How the shipping checks name what is wrong: each bad field's path and message.

/// Field errors: the path of each bad field and what is wrong with it.
pub type FieldErrors = Vec<(String, String)>;

/// Joins field errors into one line, for a dead letter's reason.
pub fn describe(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects field errors under a prefix.
pub(super) struct Errors<'p>(pub(super) FieldErrors, &'p str);

impl<'p> Errors<'p> {
    pub(super) fn new(prefix: &'p str) -> Self {
        Errors(Vec::new(), prefix)
    }

    pub(super) fn add(&mut self, field: &str, message: impl Into<String>) {
        let path = if self.1.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.1)
        };
        self.0.push((path, message.into()));
    }

    /// A text that must be there: trimmed, 1 to `max` characters, no control characters.
    pub(super) fn required(&mut self, field: &str, raw: &str, max: usize) -> Option<String> {
        let text = raw.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > max {
            self.add(field, format!("must be 1 to {max} characters"));
            None
        } else if text.chars().any(char::is_control) {
            self.add(
                field,
                "must not contain control characters (line breaks, tabs)",
            );
            None
        } else {
            Some(text.to_owned())
        }
    }

    /// A text that may be absent: blank is absent; otherwise as [`Errors::required`].
    /// `None` when it is at fault.
    pub(super) fn optional(
        &mut self,
        field: &str,
        raw: Option<&str>,
        max: usize,
    ) -> Option<Option<String>> {
        match raw.map(str::trim).filter(|t| !t.is_empty()) {
            None => Some(None),
            Some(text) => self.required(field, text, max).map(Some),
        }
    }
}
