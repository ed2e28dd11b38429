//! An import file, split into its conversations as its bytes arrive: the elements of a JSON
//! array (a ChatGPT `conversations.json`, an OpenAI items list), or a sequence of JSON values
//! (our NDJSON export, one per line; or a single object). Only the element being read is
//! held; its bytes are handed over, still unparsed, once it is complete.

/// What the file is, by its first byte that is not a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nothing but spaces yet.
    Unknown,
    /// `[…, …]`: its elements.
    Array,
    /// `{…}{…}`, one per line or not: each value.
    Values,
}

/// Why the file's structure cannot be read (its elements themselves are parsed later).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the file must be a JSON array or JSON objects, not `{0}`")]
    NotJson(char),
    #[error("conversation {0} is not a JSON object")]
    NotAnObject(usize),
    #[error("the file goes on after its array ends")]
    AfterTheEnd,
    #[error("the file ends inside conversation {0}")]
    Truncated(usize),
}

/// Splits a file fed in pieces into its elements.
#[derive(Debug)]
pub struct Splitter {
    shape: Shape,
    /// The element being read.
    element: Vec<u8>,
    /// Bracket depth inside the element (0: between elements).
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Elements handed over so far.
    count: usize,
    /// The array's closing bracket was read.
    closed: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Self {
            shape: Shape::Unknown,
            element: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            count: 0,
            closed: false,
        }
    }
}

impl Splitter {
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Elements handed over so far: the index of the next one.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Reads `bytes`, adding the elements they complete to `done`, in order.
    ///
    /// # Errors
    /// [`SplitError`] when the bytes break the file's structure (the elements added before
    /// are whole).
    pub fn push(&mut self, bytes: &[u8], done: &mut Vec<Vec<u8>>) -> Result<(), SplitError> {
        for &b in bytes {
            if self.depth > 0 {
                self.element.push(b);
                self.inside(b);
                if self.depth == 0 {
                    done.push(std::mem::take(&mut self.element));
                    self.count += 1;
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            match (self.shape, b) {
                (Shape::Unknown, b'[') => self.shape = Shape::Array,
                (Shape::Unknown, b'{') => {
                    self.shape = Shape::Values;
                    self.open(b);
                }
                (Shape::Unknown, other) => return Err(SplitError::NotJson(char::from(other))),
                (_, _) if self.closed => return Err(SplitError::AfterTheEnd),
                (Shape::Array, b',') => {}
                (Shape::Array, b']') => self.closed = true,
                (_, b'{' | b'[') => self.open(b),
                _ => return Err(SplitError::NotAnObject(self.count)),
            }
        }
        Ok(())
    }

    /// The end of the file.
    ///
    /// # Errors
    /// [`SplitError::Truncated`] when it ends inside an element or before its array closed.
    pub fn finish(&self) -> Result<(), SplitError> {
        if self.depth > 0 || (self.shape == Shape::Array && !self.closed) {
            return Err(SplitError::Truncated(self.count));
        }
        Ok(())
    }

    fn open(&mut self, b: u8) {
        self.element.push(b);
        self.depth = 1;
    }

    /// Follows strings and brackets inside an element.
    fn inside(&mut self, b: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth -= 1,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `file` fed in pieces of `size` bytes: its elements as strings, or the first error.
    fn split(file: &str, size: usize) -> Result<Vec<String>, SplitError> {
        let mut splitter = Splitter::default();
        let mut out = Vec::new();
        for piece in file.as_bytes().chunks(size) {
            splitter.push(piece, &mut out)?;
        }
        splitter.finish()?;
        Ok(out
            .into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect())
    }

    #[test]
    fn arrays_and_lines_split_the_same_at_every_piece_size() {
        let array = r#" [ {"a": "x]}\"{", "b": [1, {"c": 2}]} ,{"d":"é"}]  "#;
        let lines = "{\"a\": \"}\\\\\"}\n\n{\"b\":\n [1]}\n";
        for size in 1..=array.len() {
            assert_eq!(
                split(array, size).unwrap(),
                [r#"{"a": "x]}\"{", "b": [1, {"c": 2}]}"#, r#"{"d":"é"}"#],
                "piece size {size}"
            );
        }
        for size in 1..=lines.len() {
            assert_eq!(
                split(lines, size).unwrap(),
                ["{\"a\": \"}\\\\\"}", "{\"b\":\n [1]}"],
                "piece size {size}"
            );
        }
        assert_eq!(split("[]", 1).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn broken_files_say_where() {
        assert_eq!(split("  42", 3), Err(SplitError::NotJson('4')));
        assert_eq!(split("[{}, 7]", 3), Err(SplitError::NotAnObject(1)));
        assert_eq!(split("[{}] {}", 3), Err(SplitError::AfterTheEnd));
        assert_eq!(split("[{}, {\"a\": [", 3), Err(SplitError::Truncated(1)));
        assert_eq!(split("[{}", 3), Err(SplitError::Truncated(1)));
        assert_eq!(split("{\"a\": \"b", 3), Err(SplitError::Truncated(0)));
    }
}
