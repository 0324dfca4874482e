//! The `user_requirement` template: compiled once, checked against the columns, rendered per row.
//!
//! minijinja runs with strict undefined behaviour, and every variable the template reads is
//! compared with the contact list's header before anything else happens, so a typo in
//! `{{ nmae }}` stops the campaign at `validate` instead of sending "Call  for Sunrise Dental" to
//! a real person. Rendering is pure (no filters that reach outside), so `preview`, `validate` and
//! `run` produce byte-identical requirements.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

const NAME: &str = "user_requirement";
/// The variable holding every column by its header.
pub const ROW: &str = "row";

pub struct Template {
    env: Environment<'static>,
}

impl Template {
    /// Compiles `source`; the error text is minijinja's description of the syntax problem.
    pub fn compile(source: &str) -> Result<Template, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| describe(&e))?;
        Ok(Template { env })
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
        let row: std::collections::BTreeMap<&str, &str> = columns
            .iter()
            .map(String::as_str)
            .zip(cells.iter().map(String::as_str))
            .collect();
        let mut context: std::collections::BTreeMap<&str, minijinja::Value> = row
            .iter()
            .map(|(k, v)| (*k, minijinja::Value::from(*v)))
            .collect();
        // A column really named `row` wins over the map of all columns.
        context
            .entry(ROW)
            .or_insert_with(|| minijinja::Value::from_serialize(&row));
        let template = self.env.get_template(NAME).map_err(|e| describe(&e))?;
        let text = template.render(context).map_err(|e| describe(&e))?;
        let text = text.trim();
        if text.is_empty() {
            return Err("the rendered user_requirement is empty".to_string());
        }
        Ok(text.to_string())
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
