//! YAML read into JSON values with the line and column of each: the
//! schema is checked on the JSON, and a mistake is reported where it is
//! in the file.

use std::collections::HashMap;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A document and where each of its values starts (by JSON pointer).
#[derive(Debug, Default)]
pub(crate) struct Marked {
    /// The document.
    pub(crate) value: Value,
    /// 1-based line and column of each value, by JSON pointer ("" is the
    /// document).
    pub(crate) places: HashMap<String, (usize, usize)>,
}

/// Parses `text`; the YAML error's line, column and words when it is no
/// YAML.
pub(crate) fn parse(text: &str) -> Result<Marked, (usize, usize, String)> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|e| (e.marker().line(), e.marker().col() + 1, e.info().to_owned()))?;
    let value = builder.done.unwrap_or(Value::Null);
    builder.places.insert(String::new(), (1, 1));
    Ok(Marked { value, places: builder.places })
}

/// A container being filled: its JSON pointer, and for a mapping the key
/// waiting for its value.
enum Frame {
    Mapping { pointer: String, map: Map<String, Value>, key: Option<String> },
    Sequence { pointer: String, items: Vec<Value> },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    places: HashMap<String, (usize, usize)>,
    done: Option<Value>,
}

impl Builder {
    /// The pointer of the next value, and whether it is a mapping's key.
    fn next(&self) -> (String, bool) {
        match self.stack.last() {
            None => (String::new(), false),
            Some(Frame::Mapping { pointer, key: None, .. }) => (pointer.clone(), true),
            Some(Frame::Mapping { pointer, key: Some(key), .. }) => {
                (format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")), false)
            }
            Some(Frame::Sequence { pointer, items }) => (format!("{pointer}/{}", items.len()), false),
        }
    }

    /// Puts a finished `value` where it belongs.
    fn put(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Frame::Mapping { map, key, .. }) => {
                if let Some(key) = key.take() {
                    map.insert(key, value);
                }
            }
            Some(Frame::Sequence { items, .. }) => items.push(value),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let place = (mark.line(), mark.col() + 1);
        match event {
            Event::Scalar(text, style, _, _) => {
                let (pointer, is_key) = self.next();
                if is_key {
                    if let Some(Frame::Mapping { pointer, key, .. }) = self.stack.last_mut() {
                        let child = format!("{pointer}/{}", text.replace('~', "~0").replace('/', "~1"));
                        self.places.insert(child, place);
                        *key = Some(text);
                    }
                    return;
                }
                self.places.entry(pointer).or_insert(place);
                self.put(scalar(text, style));
            }
            Event::MappingStart(..) => {
                let (pointer, _) = self.next();
                self.places.entry(pointer.clone()).or_insert(place);
                self.stack.push(Frame::Mapping { pointer, map: Map::new(), key: None });
            }
            Event::SequenceStart(..) => {
                let (pointer, _) = self.next();
                self.places.entry(pointer.clone()).or_insert(place);
                self.stack.push(Frame::Sequence { pointer, items: Vec::new() });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let value = match self.stack.pop() {
                    Some(Frame::Mapping { map, .. }) => Value::Object(map),
                    Some(Frame::Sequence { items, .. }) => Value::Array(items),
                    None => Value::Null,
                };
                self.put(value);
            }
            // Aliases are not followed: a product file has no use for them.
            Event::Alias(_) => self.put(Value::Null),
            _ => {}
        }
    }
}

/// A scalar as YAML 1.2's core schema reads it: plain `true`, `false`,
/// `null`, `~` and numbers are themselves, everything else (and anything
/// quoted) is text.
fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" | "~" | "" => Value::Null,
        number => {
            if let Ok(n) = number.parse::<i64>() {
                Value::from(n)
            } else if let Some(n) = number.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(text)
            }
        }
    }
}
