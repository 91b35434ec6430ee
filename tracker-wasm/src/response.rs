//! Reading the collector's answer: per-event `results` and the whole-request `error`, with a
//! small JSON reader instead of serde (the answer is small and its shape is ours).

/// The collector's verdict on one event of a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventResult {
    /// Position of the event in the batch.
    pub index: usize,
    /// The event's id as echoed by the collector, if present.
    pub event_id: Option<String>,
    /// `status: "accepted"` (a duplicate counts as accepted: it is stored already).
    pub accepted: bool,
    /// Error code of a rejection.
    pub code: String,
    /// Offending field of a rejection.
    pub field: String,
    /// Human message of a rejection.
    pub message: String,
}

/// A whole-request error: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Problem {
    /// Error code.
    pub code: String,
    /// Offending field.
    pub field: String,
    /// Human message.
    pub message: String,
}

/// What the tracker needs from an answer body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// Per-event results (empty if the body had none or was not JSON).
    pub results: Vec<EventResult>,
    /// The whole-request error, if any.
    pub error: Option<Problem>,
}

/// What came back from one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// HTTP status; 0 when there was no answer (network error, CORS failure, offline).
    pub status: u16,
    /// The `Retry-After` header, if present and readable.
    pub retry_after: Option<String>,
    /// The body, as far as it could be read.
    pub answer: Answer,
}

/// Parses an answer body; never fails (unreadable parts are simply absent).
pub fn parse(body: &str) -> Answer {
    let mut answer = Answer::default();
    let Some(Json::Obj(top)) = Reader::new(body).document() else {
        return answer;
    };
    for (key, value) in top {
        match (key.as_str(), value) {
            ("results", Json::Arr(items)) => {
                answer.results = items.into_iter().filter_map(event_result).collect();
            }
            ("error", Json::Obj(fields)) => {
                let mut p = Problem::default();
                for (k, v) in fields {
                    if let Json::Str(s) = v {
                        match k.as_str() {
                            "code" => p.code = s,
                            "field" => p.field = s,
                            "message" => p.message = s,
                            _ => {}
                        }
                    }
                }
                answer.error = Some(p);
            }
            _ => {}
        }
    }
    answer
}

fn event_result(item: Json) -> Option<EventResult> {
    let Json::Obj(fields) = item else { return None };
    let mut r = EventResult::default();
    let mut has_index = false;
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("index", Json::Num(n)) => {
                r.index = parse_index(&n)?;
                has_index = true;
            }
            ("event_id", Json::Str(s)) => r.event_id = Some(s),
            ("status", Json::Str(s)) => r.accepted = s == "accepted",
            ("code", Json::Str(s)) => r.code = s,
            ("field", Json::Str(s)) => r.field = s,
            ("message", Json::Str(s)) => r.message = s,
            _ => {}
        }
    }
    has_index.then_some(r)
}

fn parse_index(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
}

/// A JSON value; numbers stay text (only small integers are ever read from them).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

/// Nesting deeper than this is refused rather than risking the (small) wasm stack.
const MAX_DEPTH: u32 = 16;

struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text: text.as_bytes(),
            pos: 0,
        }
    }

    fn document(mut self) -> Option<Json> {
        let value = self.value(0)?;
        self.skip_ws();
        (self.pos == self.text.len()).then_some(value)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Option<Json> {
        let end = self.pos + word.len();
        (self.text.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            value
        })
    }

    fn value(&mut self, depth: u32) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                let mut fields = Vec::new();
                if self.eat(b'}') {
                    return Some(Json::Obj(fields));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    fields.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Some(Json::Obj(fields));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Json::Arr(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let text = core::str::from_utf8(&self.text[start..self.pos]).ok()?;
                Some(Json::Num(text.into()))
            }
            _ => None,
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        digits
            .iter()
            .try_fold(0u32, |n, &d| Some(n * 16 + (d as char).to_digit(16)?))
    }

    /// A string literal starting at `"`; escapes decoded, lone surrogates become U+FFFD.
    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let esc = self.peek()?;
                    self.pos += 1;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi)
                                && self.text.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                match self.hex4()? {
                                    lo @ 0xdc00..=0xdfff => {
                                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                    }
                                    _ => {
                                        self.pos = save;
                                        hi
                                    }
                                }
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return None,
                _ => out.push(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_per_event_results() {
        let body = r#"{"accepted": 2, "rejected": 1, "results": [
          {"index": 0, "event_id": "e0", "status": "accepted"},
          {"index": 1, "event_id": "e1", "status": "rejected", "code": "context_key_hyphen",
           "field": "context.user-name", "message": "context key `user-name` contains a hyphen; \u2026 \"x\""},
          {"index": 2, "event_id": "e2", "status": "accepted", "duplicate": true}
        ]}"#;
        let a = parse(body);
        assert_eq!(a.error, None);
        assert_eq!(a.results.len(), 3);
        assert!(a.results[0].accepted);
        let r = &a.results[1];
        assert_eq!((r.index, r.accepted), (1, false));
        assert_eq!(r.event_id.as_deref(), Some("e1"));
        assert_eq!(r.code, "context_key_hyphen");
        assert_eq!(r.field, "context.user-name");
        assert!(r.message.ends_with("; … \"x\""));
        assert!(a.results[2].accepted, "a duplicate is stored already");
    }

    #[test]
    fn reads_a_whole_request_error_next_to_results() {
        let body = r#"{"error":{"code":"unknown_partner","message":"no such partner","field":"partner_id"},
            "results":[{"index":0,"status":"rejected","code":"unknown_partner","field":"partner_id","message":"m"}]}"#;
        let a = parse(body);
        let e = a.error.unwrap();
        assert_eq!(
            (e.code.as_str(), e.field.as_str()),
            ("unknown_partner", "partner_id")
        );
        assert_eq!(a.results.len(), 1);
    }

    #[test]
    fn garbage_yields_nothing_rather_than_failing() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            "{",
            "[1,2]",
            "{\"results\":[{\"index\":-1}]}",
            "{\"a\":1}x",
        ] {
            let a = parse(body);
            assert!(a.results.is_empty() && a.error.is_none(), "{body}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(parse(&deep), Answer::default());
    }

    #[test]
    fn unicode_escapes_decode_pairs_and_replace_lone_surrogates() {
        let a =
            parse(r#"{"error":{"code":"\ud83d\ude00","message":"\ud800x","field":"\u0041\/"}}"#);
        let e = a.error.unwrap();
        assert_eq!(e.code, "😀");
        assert_eq!(e.message, "\u{fffd}x");
        assert_eq!(e.field, "A/");
    }

    #[test]
    fn agrees_with_serde_json_on_strings() {
        for s in ["plain", "tab\t", "\u{1}", "Заказ 😀", "\\\"/"] {
            let json = serde_json::to_string(&serde_json::json!({"error": {"code": s}})).unwrap();
            assert_eq!(parse(&json).error.unwrap().code, s);
        }
    }
}
