//! A minimal XML reader, enough to check that the lab's SVG plots are well-formed and to find their
//! parts again (tests look series up by their `id` and `class` attributes).
//!
//! It accepts the subset of XML 1.0 the plots use, and rejects anything outside it rather than
//! guessing: an optional `<?xml …?>` declaration, comments, elements with quoted attributes, text,
//! the five predefined entities and numeric character references. Checked: tags balance and nest,
//! there is exactly one root element, names are well-formed, attribute names are unique within an
//! element, every `&` starts a known reference, and no `<` appears in attribute values. DTDs,
//! CDATA sections and processing instructions other than the declaration are refused.

use std::fmt;

/// One element of a parsed document, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Tag name (`svg`, `g`, `polyline`, …).
    pub name: String,
    /// Attributes in source order, values with references resolved.
    pub attrs: Vec<(String, String)>,
    /// Index of the parent element in the document's list (`None` for the root).
    pub parent: Option<usize>,
    /// Text directly inside this element (not in its children), references resolved.
    pub text: String,
}

impl Element {
    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the whitespace-separated `class` attribute contains `class`.
    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
    }
}

/// A document that is not well-formed: where (byte offset) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// Byte offset into the document.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed XML at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for XmlError {}

/// A parsed document: its elements in document order (index 0 is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Every element, parents before children.
    pub elements: Vec<Element>,
}

impl Document {
    /// Elements named `name`.
    pub fn by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements.iter().filter(move |e| e.name == name)
    }

    /// The element whose `id` is `id`, if any.
    pub fn by_id(&self, id: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.attr("id") == Some(id))
    }

    /// Index of `e` in [`Document::elements`] (by identity).
    fn index_of(&self, e: &Element) -> Option<usize> {
        self.elements.iter().position(|x| std::ptr::eq(x, e))
    }

    /// The descendants of `e`, in document order.
    pub fn descendants<'a>(&'a self, e: &'a Element) -> Vec<&'a Element> {
        let Some(root) = self.index_of(e) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for el in self.elements.iter().skip(root + 1) {
            let mut p = el.parent;
            while let Some(pi) = p {
                if pi == root {
                    out.push(el);
                    break;
                }
                if pi < root {
                    break;
                }
                p = self.elements[pi].parent;
            }
        }
        out
    }
}

/// Parses `doc`, or says why it is not well-formed.
pub fn parse(doc: &str) -> Result<Document, XmlError> {
    Parser {
        s: doc.as_bytes(),
        doc,
        pos: 0,
    }
    .document()
}

/// Checks that `doc` is well-formed XML (see the module docs for the subset accepted).
pub fn check_well_formed(doc: &str) -> Result<(), XmlError> {
    parse(doc).map(|_| ())
}

struct Parser<'a> {
    s: &'a [u8],
    doc: &'a str,
    pos: usize,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

impl Parser<'_> {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, XmlError> {
        Err(XmlError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn starts_with(&self, p: &str) -> bool {
        self.s[self.pos..].starts_with(p.as_bytes())
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Skips up to and including `end`, or fails.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), XmlError> {
        match self.doc[self.pos..].find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => self.err(format!("unterminated {what}")),
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let start = self.pos;
        match self.peek() {
            Some(b) if is_name_start(b) => self.pos += 1,
            _ => return self.err("expected a name"),
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Ok(self.doc[start..self.pos].to_owned())
    }

    /// Comments and whitespace between top-level items.
    fn misc(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            if self.starts_with("<!--") {
                self.comment()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), XmlError> {
        self.pos += 4;
        let start = self.pos;
        self.skip_past("-->", "comment")?;
        if self.doc[start..self.pos - 3].contains("--") {
            return self.err("`--` inside a comment");
        }
        Ok(())
    }

    fn document(mut self) -> Result<Document, XmlError> {
        if self.starts_with("\u{feff}") {
            self.pos += 3;
        }
        if self.starts_with("<?xml") {
            self.skip_past("?>", "XML declaration")?;
        }
        self.misc()?;
        if self.peek() != Some(b'<') {
            return self.err("expected the root element");
        }
        let mut elements = Vec::new();
        self.element(&mut elements)?;
        self.misc()?;
        if self.pos != self.s.len() {
            return self.err("content after the root element");
        }
        Ok(Document { elements })
    }

    /// Resolves references in `raw` (text or an attribute value starting at byte `at`).
    fn unescape(&self, raw: &str, at: usize) -> Result<String, XmlError> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        let mut off = at;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let Some(end) = after.find(';') else {
                return Err(XmlError {
                    offset: off + i,
                    reason: "`&` without a terminating `;`".into(),
                });
            };
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = if let Some(h) = name.strip_prefix("#x") {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = name.strip_prefix('#') {
                        d.parse::<u32>().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                }
            };
            let Some(c) = c else {
                return Err(XmlError {
                    offset: off + i,
                    reason: format!("unknown reference `&{name};`"),
                });
            };
            out.push(c);
            rest = &after[end + 1..];
            off += i + 1 + end + 1;
        }
        out.push_str(rest);
        Ok(out)
    }

    /// An element starting at `<`, with its content, appended to `out` (parents first).
    fn element(&mut self, out: &mut Vec<Element>) -> Result<(), XmlError> {
        // Explicit stack instead of recursion: a hostile document cannot overflow the call stack.
        let mut open: Vec<usize> = Vec::new();
        loop {
            if self.pos >= self.s.len() {
                return self.err("unexpected end of document inside an element");
            }
            if self.starts_with("<!--") {
                if open.is_empty() {
                    return self.err("expected an element, found a comment");
                }
                self.comment()?;
            } else if self.starts_with("</") {
                self.pos += 2;
                let name = self.name()?;
                self.skip_ws();
                if self.peek() != Some(b'>') {
                    return self.err("expected `>` after the closing tag name");
                }
                self.pos += 1;
                let Some(top) = open.pop() else {
                    return self.err(format!("closing tag `</{name}>` without an open element"));
                };
                if out[top].name != name {
                    return self.err(format!(
                        "closing tag `</{name}>` does not match `<{}>`",
                        out[top].name
                    ));
                }
                if open.is_empty() {
                    return Ok(());
                }
            } else if self.starts_with("<!") || self.starts_with("<?") {
                return self
                    .err("DTDs, CDATA sections and processing instructions are not accepted");
            } else if self.peek() == Some(b'<') {
                self.pos += 1;
                let name = self.name()?;
                let mut attrs: Vec<(String, String)> = Vec::new();
                let self_closing = loop {
                    let had_ws = self.peek().is_some_and(|b| b.is_ascii_whitespace());
                    self.skip_ws();
                    match self.peek() {
                        Some(b'>') => {
                            self.pos += 1;
                            break false;
                        }
                        Some(b'/') => {
                            self.pos += 1;
                            if self.peek() != Some(b'>') {
                                return self.err("expected `>` after `/`");
                            }
                            self.pos += 1;
                            break true;
                        }
                        Some(_) => {
                            if !had_ws {
                                return self.err("attributes must be separated by whitespace");
                            }
                            let key = self.name()?;
                            self.skip_ws();
                            if self.peek() != Some(b'=') {
                                return self.err(format!("expected `=` after attribute `{key}`"));
                            }
                            self.pos += 1;
                            self.skip_ws();
                            let q = match self.peek() {
                                Some(q @ (b'"' | b'\'')) => q,
                                _ => return self.err("attribute values must be quoted"),
                            };
                            self.pos += 1;
                            let start = self.pos;
                            while self.peek().is_some_and(|b| b != q) {
                                if self.peek() == Some(b'<') {
                                    return self.err("`<` inside an attribute value");
                                }
                                self.pos += 1;
                            }
                            if self.peek().is_none() {
                                return self.err("unterminated attribute value");
                            }
                            let value = self.unescape(&self.doc[start..self.pos], start)?;
                            self.pos += 1;
                            if attrs.iter().any(|(k, _)| *k == key) {
                                return self.err(format!("duplicate attribute `{key}`"));
                            }
                            attrs.push((key, value));
                        }
                        None => return self.err("unterminated start tag"),
                    }
                };
                out.push(Element {
                    name,
                    attrs,
                    parent: open.last().copied(),
                    text: String::new(),
                });
                if !self_closing {
                    open.push(out.len() - 1);
                } else if open.is_empty() {
                    return Ok(());
                }
            } else {
                let start = self.pos;
                while self.peek().is_some_and(|b| b != b'<') {
                    self.pos += 1;
                }
                let text = self.unescape(&self.doc[start..self.pos], start)?;
                if text.contains("]]>") {
                    return self.err("`]]>` in text");
                }
                match open.last() {
                    Some(&top) => out[top].text.push_str(&text),
                    None => return self.err("text outside the root element"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_documents() {
        let ok = [
            "<a/>",
            "<?xml version=\"1.0\"?>\n<!-- c --><a x='1' y=\"2\"><b>t &amp; &#x3c; &#60;</b><c/></a>\n",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><g id=\"s\" class=\"a b\"><text>&lt;x&gt;</text></g></svg>",
        ];
        for d in ok {
            assert!(parse(d).is_ok(), "{d}: {:?}", parse(d));
        }
    }

    #[test]
    fn rejects_malformed_documents() {
        let bad = [
            ("", "no root"),
            ("<a>", "unclosed"),
            ("<a></b>", "mismatch"),
            ("<a><b></a></b>", "bad nesting"),
            ("<a/><b/>", "two roots"),
            ("<a x=1/>", "unquoted"),
            ("<a x='1' x='2'/>", "duplicate attribute"),
            ("<a x='<'/>", "< in attribute"),
            ("<a>&foo;</a>", "unknown entity"),
            ("<a>& b</a>", "bare ampersand"),
            ("<a x='1'y='2'/>", "no space between attributes"),
            ("<a><!-- a -- b --></a>", "double dash in comment"),
            ("<a><![CDATA[x]]></a>", "cdata"),
            ("text<a/>", "text before root"),
            ("<1a/>", "bad name"),
            ("<a>x</a>y", "text after root"),
        ];
        for (d, why) in bad {
            assert!(parse(d).is_err(), "accepted ({why}): {d}");
        }
    }

    #[test]
    fn builds_the_tree_with_resolved_text_and_attributes() {
        let d =
            parse("<r><g id='s1' class='series line'><p v='a&amp;b'/>x&lt;y</g><g id='s2'/></r>")
                .expect("well-formed");
        assert_eq!(d.elements.len(), 4);
        let s1 = d.by_id("s1").expect("s1");
        assert!(s1.has_class("line") && s1.has_class("series") && !s1.has_class("ser"));
        assert_eq!(s1.text, "x<y");
        let kids = d.descendants(s1);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].attr("v"), Some("a&b"));
        assert_eq!(d.by_id("s2").and_then(|e| e.parent), Some(0));
        assert_eq!(d.by_name("g").count(), 2);
    }
}
