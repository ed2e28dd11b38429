//! A user message's files, as the model gets them: images as images; text (`text/*`, JSON,
//! CSV) given as a data URL, inlined as text under its name, capped; anything else stored and
//! shown but not sent (the reply names it in `x-attachments-skipped`). The server never
//! fetches an attachment URL itself.

use base64::{Engine, engine::general_purpose::STANDARD};

/// What becomes of one file of a user's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// An image: the model sees it (by its URL).
    Image,
    /// Text the model reads, with its heading.
    Text(String),
    /// Stored and shown, not sent: a type the model cannot read, or text behind a URL the
    /// server does not fetch.
    Skipped,
}

/// Whether a media type is text the model can read.
pub fn is_text(media_type: &str) -> bool {
    let media_type = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type.starts_with("text/")
        || media_type == "application/json"
        || media_type.ends_with("+json")
        || media_type == "application/csv"
        || media_type == "application/x-ndjson"
}

/// What to do with a file of `media_type` at `url` named `name`, its text capped at `cap`
/// characters.
///
/// # Errors
/// Why a text data URL cannot be read (not base64, not UTF-8).
pub fn classify(media_type: &str, url: &str, name: &str, cap: usize) -> Result<Attachment, String> {
    if media_type.starts_with("image/") {
        return Ok(Attachment::Image);
    }
    if !is_text(media_type) || !url.starts_with("data:") {
        return Ok(Attachment::Skipped);
    }
    let bytes = data_url_bytes(url)?;
    let text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())?;
    let total = text.chars().count();
    let mut shown: String = text.chars().take(cap).collect();
    if total > cap {
        shown.push_str(&format!("\n[… cut: {cap} of {total} characters]"));
    }
    Ok(Attachment::Text(format!(
        "Attached file `{name}` ({media_type}):\n{shown}"
    )))
}

/// The bytes a data URL holds (`data:[<type>][;base64],<data>`).
fn data_url_bytes(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| "is not a data URL".to_owned())?;
    let (head, data) = rest
        .split_once(',')
        .ok_or_else(|| "is a data URL without a comma".to_owned())?;
    if head.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
        STANDARD
            .decode(data.trim())
            .map_err(|_| "is a data URL whose base64 does not decode".to_owned())
    } else {
        percent_decode(data)
    }
}

fn percent_decode(data: &str) -> Result<Vec<u8>, String> {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "is a data URL with a bad %-escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// How many bytes a data URL holds (`None` for another URL, or one that does not decode).
pub fn data_url_size(url: &str) -> Option<u64> {
    if !url.starts_with("data:") {
        return None;
    }
    data_url_bytes(url)
        .ok()
        .and_then(|b| u64::try_from(b.len()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_data_urls_are_read_capped_and_the_rest_skipped() {
        let base64 = format!("data:text/plain;base64,{}", STANDARD.encode("héllo"));
        assert_eq!(
            classify("text/plain", &base64, "a.txt", 100),
            Ok(Attachment::Text(
                "Attached file `a.txt` (text/plain):\nhéllo".to_owned()
            ))
        );
        assert_eq!(data_url_size(&base64), Some(6));
        let Ok(Attachment::Text(cut)) =
            classify("text/csv", "data:text/csv,a%2Cb%0A1%2C2", "t.csv", 3)
        else {
            panic!("csv is text");
        };
        assert!(cut.ends_with("a,b\n[… cut: 3 of 7 characters]"), "{cut}");
        assert_eq!(
            classify(
                "application/pdf",
                "data:application/pdf;base64,JVBERi0=",
                "r.pdf",
                9
            ),
            Ok(Attachment::Skipped)
        );
        assert_eq!(
            classify("text/plain", "https://example.com/a.txt", "a.txt", 9),
            Ok(Attachment::Skipped),
            "the server fetches nothing"
        );
        assert_eq!(
            classify("image/png", "https://x/a.png", "a", 9),
            Ok(Attachment::Image)
        );
        assert!(classify("text/plain", "data:text/plain;base64,@@@", "a", 9).is_err());
        assert!(
            classify(
                "application/json",
                "data:application/json;base64,/w==",
                "a",
                9
            )
            .is_err()
        );
        assert!(is_text("application/vnd.api+json") && !is_text("application/zip"));
    }
}
