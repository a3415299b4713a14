//! Byte-faithful text handling: BOM and line endings are taken off before the recipes run and
//! put back afterwards, so a rewrite keeps them and a revert restores the exact bytes.

use std::path::Path;

use crate::error::{Error, Result};

const BOM: &str = "\u{feff}";

/// A decoded file: its text with `\n` line ends, and what to put back when encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doc {
    pub bom: bool,
    pub crlf: bool,
    pub body: String,
}

impl Doc {
    /// Decode `bytes`; `path` only names the file in errors.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Doc> {
        let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
            path: path.to_path_buf(),
            offset: e.valid_up_to(),
        })?;
        Ok(Doc::from_str(text))
    }

    /// Split a string into BOM, line-ending style and body.
    pub fn from_str(text: &str) -> Doc {
        let (bom, text) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        // CRLF mode only when every line feed is part of a CRLF pair; a file with mixed endings
        // is handled as LF text whose lines happen to end in '\r', which is still invertible.
        let lf = text.matches('\n').count();
        let crlf = lf > 0 && text.matches("\r\n").count() == lf;
        let body = if crlf {
            text.replace("\r\n", "\n")
        } else {
            text.to_string()
        };
        Doc { bom, crlf, body }
    }

    /// Encode `body` (with `\n` line ends) in this document's style.
    pub fn encode(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len() + 64);
        if self.bom {
            out.push_str(BOM);
        }
        if self.crlf {
            out.push_str(&body.replace('\n', "\r\n"));
        } else {
            out.push_str(body);
        }
        out
    }
}

/// 1-based line number of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_encode_round_trips() {
        let cases: &[(&str, bool, bool)] = &[
            ("a\nb\n", false, false),
            ("a\r\nb\r\n", false, true),
            ("a\r\nb", false, true),
            ("a\r\nb\nc\r\n", false, false),
            ("\u{feff}a\r\n", true, true),
            ("no newline", false, false),
            ("", false, false),
            ("x\r\r\ny\r\n", false, true),
        ];
        for &(input, bom, crlf) in cases {
            let doc = Doc::from_str(input);
            assert_eq!((doc.bom, doc.crlf), (bom, crlf), "{input:?}");
            assert!(!doc.body.starts_with(BOM));
            assert_eq!(doc.encode(&doc.body), input, "{input:?}");
        }
    }

    #[test]
    fn invalid_utf8_names_file_and_offset() {
        let err = Doc::decode(b"ok\xff", Path::new("x.py")).unwrap_err();
        assert!(matches!(err, Error::NotUtf8 { offset: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("x.py"));
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
