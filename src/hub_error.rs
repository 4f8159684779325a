//! hf-hub's errors as one line with each cause once: its HTTP request error appends the URL that
//! the HTTP client's own message already ends with ("… for url (U) (U)").

/// The error's message, without a trailing ` (URL)` that the text before it already holds.
pub fn describe(error: &hf_hub::HFError) -> String {
    without_repeated_tail(&error.to_string())
}

fn without_repeated_tail(text: &str) -> String {
    if let Some(open) = text.rfind(" (")
        && text.ends_with(')')
    {
        let inner = &text[open + 2..text.len() - 1];
        if !inner.is_empty() && text[..open].contains(inner) {
            return text[..open].to_string();
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::without_repeated_tail;

    #[test]
    fn a_repeated_url_is_dropped_once() {
        let url = "https://huggingface.co/x/resolve/abc/f.parquet";
        assert_eq!(
            without_repeated_tail(&format!(
                "HTTP request error: error sending request for url ({url}) ({url})"
            )),
            format!("HTTP request error: error sending request for url ({url})")
        );
        for kept in [
            "timed out (after 30 s)",
            "no parentheses",
            "a (b) (c)",
            "x ()",
        ] {
            assert_eq!(without_repeated_tail(kept), kept);
        }
    }
}
