//! The `user_requirement` template: compiled once, checked against the columns, rendered per row.
//!
//! minijinja runs with strict undefined behaviour, and every variable the template reads is
//! compared with the contact list's header before anything else happens, so a typo in
//! `{{ nmae }}` stops the campaign at `validate` instead of sending "Call  for Sunrise Dental" to
//! a real person. Rendering is pure (no filters that reach outside), so `preview`, `validate` and
//! `run` produce byte-identical requirements.

use std::collections::BTreeSet;

use std::cell::RefCell;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, UndefinedBehavior};

const NAME: &str = "user_requirement";
/// The variable holding every column by its header.
pub const ROW: &str = "row";

pub struct Template {
    env: Environment<'static>,
    columns: RefCell<Option<Arc<Columns>>>,
}

impl Template {
    /// Compiles `source`; the error text is minijinja's description of the syntax problem.
    pub fn compile(source: &str) -> Result<Template, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| describe(&e))?;
        Ok(Template {
            env,
            columns: RefCell::new(None),
        })
    }

    /// The top-level names the template reads (`{{ a.b }}` reads `a`), other than the
    /// engine's own globals and `row` (every column by its header, for headers that are not
    /// names: `{{ row["客户 姓名"] }}`).
    pub fn variables(&self) -> BTreeSet<String> {
        match self.env.get_template(NAME) {
            // `range`, `dict` and friends are the engine's own, not columns.
            Ok(t) => t
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| v != ROW && !self.env.globals().any(|(name, _)| name == v))
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// Renders one contact: `columns` and `cells` are parallel. The result is trimmed; an empty
    /// result is an error, because an empty instruction would make the AI caller improvise.
    pub fn render(&self, columns: &[String], cells: &[String]) -> Result<String, String> {
        let columns = self.columns_for(columns);
        let row = Arc::new(Row {
            columns,
            cells: cells.to_vec(),
        });
        let template = self.env.get_template(NAME).map_err(|e| describe(&e))?;
        let context = minijinja::Value::from_object(Context(row));
        let text = template.render(context).map_err(|e| describe(&e))?;
        let text = text.trim();
        if text.is_empty() {
            return Err("the rendered user_requirement is empty".to_string());
        }
        Ok(text.to_string())
    }

    /// The header as the row objects share it, built once per list rather than once per row.
    fn columns_for(&self, names: &[String]) -> Arc<Columns> {
        let mut cached = self.columns.borrow_mut();
        match cached.as_ref() {
            Some(c) if c.names == names => c.clone(),
            _ => {
                let mut sorted: Vec<usize> = (0..names.len()).collect();
                sorted.sort_by(|&a, &b| names[a].cmp(&names[b]));
                let c = Arc::new(Columns {
                    names: names.to_vec(),
                    sorted,
                });
                *cached = Some(c.clone());
                c
            }
        }
    }
}

/// A list's header, and its names in sorted order (the order `row` is iterated in).
#[derive(Debug)]
struct Columns {
    names: Vec<String>,
    sorted: Vec<usize>,
}

/// One row as the template sees it through `row`: a map from column name to cell, looked up
/// when the template asks, so rendering builds no map per row.
#[derive(Debug)]
struct Row {
    columns: Arc<Columns>,
    cells: Vec<String>,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let key = key.as_str()?;
        let i = self.columns.names.iter().position(|c| c == key)?;
        Some(minijinja::Value::from(self.cells.get(i)?.as_str()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.columns
                .sorted
                .iter()
                .map(|&i| minijinja::Value::from(self.columns.names[i].as_str()))
                .collect(),
        )
    }
}

/// The template's variables: every column by name, and `row` (unless a column is named so;
/// then the column wins).
#[derive(Debug)]
struct Context(Arc<Row>);

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let row = &self.0;
        if key.as_str() == Some(ROW) && !row.columns.names.iter().any(|c| c == ROW) {
            return Some(minijinja::Value::from_dyn_object(row.clone()));
        }
        row.get_value(key)
    }
}

fn describe(err: &minijinja::Error) -> String {
    let mut text = err.kind().to_string();
    if let Some(detail) = err.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = err.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::Template;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn variables_and_rendering() {
        let t = Template::compile(
            "Call {{ name }} about {{ date }}.{% for i in range(1) %}{% endfor %}\n",
        )
        .unwrap();
        assert_eq!(
            t.variables().into_iter().collect::<Vec<_>>(),
            ["date", "name"]
        );
        let text = t
            .render(&cols(&["name", "date"]), &cols(&["王芳", "12月1日"]))
            .unwrap();
        assert_eq!(text, "Call 王芳 about 12月1日.");
    }

    #[test]
    fn chinese_headers_by_name_or_through_row() {
        let t = Template::compile("请提醒{{ 姓名 }}，{{ row[\"预约 时间\"] }}").unwrap();
        assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["姓名"]);
        let text = t
            .render(&cols(&["姓名", "预约 时间"]), &cols(&["王芳", "9点"]))
            .unwrap();
        assert_eq!(text, "请提醒王芳，9点");
    }

    #[test]
    fn empty_result_and_syntax_errors() {
        let t = Template::compile("{{ note }}").unwrap();
        assert!(t.render(&cols(&["note"]), &cols(&["  "])).is_err());
        assert!(Template::compile("Call {{ name").is_err());
    }
}
