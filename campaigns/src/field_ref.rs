//! `"$field_code"`: a filter or property value read from the triggering event's context.
//!
//! A string value that is `$` followed by a field code refers to that field; `$$` writes a
//! literal `$` (`"$$5 off"` is the text `$5 off`). Field codes follow the context-key rule
//! (letters, digits, `_`, never a hyphen), so every code is referable.

use std::collections::BTreeMap;

use eventline_audience::definition::{Condition, Predicate};
use serde_json::Value;

/// The field code a value refers to, if it is a reference.
pub fn field_ref(value: &Value) -> Option<&str> {
    let text = value.as_str()?;
    let code = text.strip_prefix('$')?;
    (!code.starts_with('$')).then_some(code)
}

/// A string value with `$$` unescaped to `$`; other values as they are.
fn literal(value: &Value) -> Value {
    match value.as_str().and_then(|t| t.strip_prefix("$$")) {
        Some(rest) => Value::String(format!("${rest}")),
        None => value.clone(),
    }
}

/// Applies `f` to every operand of a condition (each item of a list operand on its own), with
/// the operand's path as the segment validator names it (`all[1].event.where[0].value[2]`).
pub fn map_operands(
    c: &Condition,
    path: &str,
    f: &mut dyn FnMut(&str, &Value) -> Value,
) -> Condition {
    let join = |field: &str| {
        if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    let mut predicates = |list: &Option<Vec<Predicate>>, here: &str| {
        list.as_ref().map(|ps| {
            ps.iter()
                .enumerate()
                .map(|(i, p)| Predicate {
                    value: p
                        .value
                        .as_ref()
                        .map(|v| map_value(v, &format!("{here}.where[{i}].value"), f)),
                    ..p.clone()
                })
                .collect()
        })
    };
    match c {
        Condition::All(children) | Condition::Any(children) => {
            let word = if matches!(c, Condition::All(_)) {
                "all"
            } else {
                "any"
            };
            let here = join(word);
            let mapped = children
                .iter()
                .enumerate()
                .map(|(i, child)| map_operands(child, &format!("{here}[{i}]"), f))
                .collect();
            if word == "all" {
                Condition::All(mapped)
            } else {
                Condition::Any(mapped)
            }
        }
        Condition::Not(inner) => Condition::Not(Box::new(map_operands(inner, &join("not"), f))),
        Condition::Event(e) => {
            let mut e = e.clone();
            e.filter = predicates(&e.filter, &join("event"));
            Condition::Event(e)
        }
        Condition::LastEvent(e) => {
            let mut e = e.clone();
            e.filter = predicates(&e.filter, &join("last_event"));
            Condition::LastEvent(e)
        }
        Condition::DaysSinceLast(e) => {
            let mut e = e.clone();
            e.filter = predicates(&e.filter, &join("days_since_last"));
            Condition::DaysSinceLast(e)
        }
        Condition::Profile(p) => {
            let mut p = p.clone();
            let here = format!("{}.value", join("profile"));
            p.value = p.value.as_ref().map(|v| map_value(v, &here, f));
            Condition::Profile(p)
        }
    }
}

fn map_value(v: &Value, path: &str, f: &mut dyn FnMut(&str, &Value) -> Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| f(&format!("{path}[{i}]"), item))
                .collect(),
        ),
        other => f(path, other),
    }
}

/// Every reference in a condition: `(path, field code)`.
pub fn references(c: &Condition) -> Vec<(String, String)> {
    let mut found = Vec::new();
    map_operands(c, "", &mut |path, v| {
        if let Some(code) = field_ref(v) {
            found.push((path.to_string(), code.to_string()));
        }
        v.clone()
    });
    found
}

/// The condition with every reference replaced by the context's value and `$$` unescaped.
/// `Err` names a field the context lacks: the caller treats the condition as not holding (an
/// event without `product` cannot select the customers interested in its product).
pub fn resolve(c: &Condition, context: &BTreeMap<String, Value>) -> Result<Condition, String> {
    let mut missing = None;
    let resolved = map_operands(c, "", &mut |_, v| match field_ref(v) {
        Some(code) => match context.get(code) {
            Some(value) => value.clone(),
            None => {
                missing.get_or_insert_with(|| code.to_string());
                v.clone()
            }
        },
        None => literal(v),
    });
    match missing {
        Some(code) => Err(code),
        None => Ok(resolved),
    }
}

/// A value with its reference resolved (or `$$` unescaped); `Err` names a missing field.
pub fn resolve_value(v: &Value, context: &BTreeMap<String, Value>) -> Result<Value, String> {
    match field_ref(v) {
        Some(code) => context.get(code).cloned().ok_or_else(|| code.to_string()),
        None => Ok(literal(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn interested() -> Condition {
        serde_json::from_value(json!({"all": [
            {"event": {"name": "product_viewed", "where": [
                {"key": "product", "op": "eq", "value": "$product"},
                {"key": "size", "op": "in", "value": ["$size", "XL", "$$dollar"]}]}},
            {"not": {"profile": {"field": "email", "op": "eq", "value": "$$x"}}}
        ]}))
        .unwrap()
    }

    #[test]
    fn references_are_found_with_the_segment_validators_paths() {
        assert_eq!(
            references(&interested()),
            [
                (
                    "all[0].event.where[0].value".to_string(),
                    "product".to_string()
                ),
                (
                    "all[0].event.where[1].value[0]".to_string(),
                    "size".to_string()
                ),
            ]
        );
    }

    #[test]
    fn resolving_takes_the_events_values_and_unescapes_double_dollars() {
        let ctx = BTreeMap::from([
            ("product".to_string(), json!("sku-1")),
            ("size".to_string(), json!("M")),
        ]);
        let resolved = serde_json::to_value(resolve(&interested(), &ctx).unwrap()).unwrap();
        assert_eq!(resolved["all"][0]["event"]["where"][0]["value"], "sku-1");
        assert_eq!(
            resolved["all"][0]["event"]["where"][1]["value"],
            json!(["M", "XL", "$dollar"])
        );
        assert_eq!(resolved["all"][1]["not"]["profile"]["value"], "$x");
        let without_size = BTreeMap::from([("product".to_string(), json!("sku-1"))]);
        assert_eq!(
            resolve(&interested(), &without_size),
            Err("size".to_string())
        );
    }
}
