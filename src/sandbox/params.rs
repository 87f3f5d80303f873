//! Request parameters: the query string and the body merged into one nested
//! object, the way PHP's `parse_str` builds `$_REQUEST` (API-FACTS §3).
//!
//! `data[name_intern]=x` becomes `{"data":{"name_intern":"x"}}`,
//! `a[]=1&a[]=2` becomes `{"a":["1","2"]}`. A nested level whose keys are
//! exactly `0, 1, 2, …` in order is shown as a JSON array, as PHP's
//! `json_encode` would; anything else stays an object. Leaves are strings.
//! Later pairs win, so the body overrides the query on equal names.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// PHP's default `max_input_nesting_level`. Deeper names are refused rather
/// than silently dropped, and the bound keeps every recursion below shallow.
const MAX_DEPTH: usize = 64;

/// Why parameters could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamsError {
    /// A name nests deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A JSON body that does not parse or is not an object.
    BadJson,
}

/// How the body is encoded, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `application/x-www-form-urlencoded`: parsed like the query string.
    Form,
    /// `application/json`: an object whose scalars become strings.
    Json,
    /// Anything else (or no body): not read for parameters, as PHP would not.
    Other,
}

impl BodyKind {
    /// Classifies a `Content-Type` value (parameters such as charset ignored).
    pub fn from_content_type(value: Option<&str>) -> Self {
        let essence = value
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-www-form-urlencoded") => Self::Form,
            Some("application/json") => Self::Json,
            _ => Self::Other,
        }
    }
}

/// Parses the query string and body into one parameter object.
///
/// # Errors
/// [`ParamsError`] for over-deep names or a malformed JSON body.
pub(crate) fn parse(
    query: Option<&str>,
    body: &[u8],
    kind: BodyKind,
) -> Result<Map<String, Value>, ParamsError> {
    let mut root = Branch::default();
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(query) = query {
        pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    if kind == BodyKind::Form {
        pairs.extend(form_urlencoded::parse(body).into_owned());
    }
    for (name, value) in pairs {
        insert(&mut root, &name, value)?;
    }
    let mut params = root.into_object();
    if kind == BodyKind::Json && !body.iter().all(u8::is_ascii_whitespace) {
        let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) else {
            return Err(ParamsError::BadJson);
        };
        for (name, value) in json {
            params.insert(name, stringify(value));
        }
    }
    Ok(params)
}

/// Turns JSON scalars into the strings a form would have carried:
/// numbers as written, booleans as `Y`/`N`, null as empty.
fn stringify(value: Value) -> Value {
    match value {
        Value::Null => Value::String(String::new()),
        Value::Bool(b) => Value::String(if b { "Y" } else { "N" }.to_owned()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => Value::String(s),
        Value::Array(items) => Value::Array(items.into_iter().map(stringify).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, stringify(v))).collect())
        }
    }
}

/// One step of a bracketed name: `[key]` or `[]`.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Append,
}

/// What a parameter name means once its brackets are read.
#[derive(Debug, PartialEq, Eq)]
enum Name<'a> {
    /// Empty base name (`=x`, `[a]=x`): PHP drops the pair.
    Dropped,
    /// Unclosed bracket (`a[b=x`): PHP keeps it flat, the `[` turned `_`.
    Literal(String),
    /// `a[b][]`: the base name, then one segment per bracket.
    Path(Vec<Segment<'a>>),
}

/// Reads `a[b][]` as `a`, `b`, append. Text after a closing bracket that
/// does not open a new one is ignored, as in PHP.
fn read_name(name: &str) -> Name<'_> {
    let Some(open) = name.find('[') else {
        return if name.is_empty() {
            Name::Dropped
        } else {
            Name::Path(vec![Segment::Key(name)])
        };
    };
    let base = &name[..open];
    if base.is_empty() {
        return Name::Dropped;
    }
    if !name[open..].contains(']') {
        return Name::Literal(name.replacen('[', "_", 1));
    }
    let mut path = vec![Segment::Key(base)];
    let mut rest = &name[open..];
    while let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else { break };
        let key = &after[..close];
        path.push(if key.is_empty() {
            Segment::Append
        } else {
            Segment::Key(key)
        });
        rest = &after[close + 1..];
    }
    Name::Path(path)
}

/// Stores one pair. Intermediate scalars in the way are replaced by
/// containers and final values overwrite, as in PHP.
fn insert(root: &mut Branch, name: &str, value: String) -> Result<(), ParamsError> {
    let path = match read_name(name) {
        Name::Dropped => return Ok(()),
        Name::Literal(name) => {
            *root.slot(Some(&name)) = Node::Leaf(value);
            return Ok(());
        }
        Name::Path(path) => path,
    };
    // The base name is not a nesting level, hence the `+ 1`.
    if path.len() > MAX_DEPTH + 1 {
        return Err(ParamsError::TooDeep);
    }
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut branch = root;
    for segment in parents {
        let node = branch.slot(key_of(segment));
        if let Node::Leaf(_) = node {
            *node = Node::Branch(Branch::default());
        }
        match node {
            Node::Branch(child) => branch = child,
            Node::Leaf(_) => return Ok(()),
        }
    }
    *branch.slot(key_of(last)) = Node::Leaf(value);
    Ok(())
}

fn key_of<'a>(segment: &Segment<'a>) -> Option<&'a str> {
    match segment {
        Segment::Key(key) => Some(key),
        Segment::Append => None,
    }
}

#[derive(Debug)]
enum Node {
    Leaf(String),
    Branch(Branch),
}

/// An ordered PHP array: keys in insertion order, O(1) lookup, and the
/// next integer key that `[]` appends with.
#[derive(Debug, Default)]
struct Branch {
    entries: Vec<(String, Node)>,
    index: HashMap<String, usize>,
    next_index: u64,
}

impl Branch {
    /// The node under `key` (`None` appends), created empty if absent.
    fn slot(&mut self, key: Option<&str>) -> &mut Node {
        let key = match key {
            Some(key) => {
                if let Some(n) = canonical_index(key) {
                    self.next_index = self.next_index.max(n.saturating_add(1));
                }
                key.to_owned()
            }
            None => {
                let key = self.next_index.to_string();
                self.next_index = self.next_index.saturating_add(1);
                key
            }
        };
        let position = match self.index.get(&key) {
            Some(&position) => position,
            None => {
                self.entries.push((key.clone(), Node::Leaf(String::new())));
                self.index.insert(key, self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        &mut self.entries[position].1
    }

    fn into_object(self) -> Map<String, Value> {
        self.entries
            .into_iter()
            .map(|(key, node)| (key, node.into_value()))
            .collect()
    }

    fn into_value(self) -> Value {
        let sequential = self
            .entries
            .iter()
            .enumerate()
            .all(|(i, (key, _))| canonical_index(key) == Some(i as u64));
        if sequential && !self.entries.is_empty() {
            Value::Array(
                self.entries
                    .into_iter()
                    .map(|(_, n)| n.into_value())
                    .collect(),
            )
        } else {
            Value::Object(self.into_object())
        }
    }
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(text) => Value::String(text),
            Node::Branch(branch) => branch.into_value(),
        }
    }
}

/// `Some(n)` when `key` is how PHP writes the integer `n` (`"0"`, `"12"`,
/// not `"012"` or `"+1"`), i.e. when PHP would treat it as an integer key.
fn canonical_index(key: &str) -> Option<u64> {
    let n: u64 = key.parse().ok()?;
    (n.to_string() == key).then_some(n)
}
