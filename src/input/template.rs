//! The `user_requirement` template: compiled once, checked against the columns, rendered per row.
//!
//! minijinja runs with strict undefined behaviour, and every variable the template reads is
//! compared with the contact list's header before anything else happens, so a typo in
//! `{{ nmae }}` stops the campaign at `validate` instead of sending "Call  for Sunrise Dental" to
//! a real person. Rendering is pure (no filters that reach outside), so `preview`, `validate` and
//! `run` produce byte-identical requirements.
//!
//! Rendering is bounded: minijinja runs on fuel (a loop inside a loop stops at once), and the
//! output is capped near `limits.max_requirement_chars`, so no template and no row can take
//! unbounded time or memory. Errors come in two kinds: those of the template whatever the row
//! (an unknown filter, test or function, running out of fuel), which stop the campaign, and
//! those of one row (an operation its values do not allow, an empty or too long result).

use std::collections::BTreeSet;

use std::cell::RefCell;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

const NAME: &str = "user_requirement";
/// The variable holding every column by its header.
pub const ROW: &str = "row";

pub struct Template {
    env: Environment<'static>,
    source: String,
    columns: RefCell<Option<Arc<Columns>>>,
    max_chars: usize,
}

/// The engine's instructions one rendering may take: a template of text, columns, filters and
/// a loop over a cell takes a few thousand; a loop inside a loop is stopped in milliseconds.
const FUEL: u64 = 100_000;

/// Why a row has no requirement.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The template is wrong whatever the row: the campaign cannot run.
    Template { message: String, help: &'static str },
    /// This row: an operation its values do not allow, or an empty or too long result.
    Row(String),
    /// This row's result ran far past the limit: it was cut off, after costing its time and
    /// memory (a value repeated millions of times).
    Runaway(String),
}

impl Template {
    /// Compiles `source`, whose renderings may be at most `max_chars` characters long; the
    /// error text is minijinja's description of the syntax problem.
    pub fn compile(source: &str, max_chars: usize) -> Result<Template, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| describe(&e))?;
        Ok(Template {
            env,
            source: source.to_string(),
            columns: RefCell::new(None),
            max_chars,
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

    /// Whether the template reads columns through `row` (`{{ row["客户 姓名"] }}`), which can
    /// reach any column, so no header name may stand for two columns.
    pub fn uses_row(&self) -> bool {
        self.env
            .get_template(NAME)
            .is_ok_and(|t| t.undeclared_variables(false).contains(ROW))
    }

    /// Renders one contact: `columns` and `cells` are parallel. The result is trimmed; an empty
    /// result is an error, because an empty instruction would make the AI caller improvise.
    pub fn render(&self, columns: &[String], cells: &[String]) -> Result<String, RenderError> {
        let columns = self.columns_for(columns);
        let text = match columns
            .plain
            .as_deref()
            .and_then(|p| plain_render(p, cells))
        {
            Some(text) => text,
            None => self.render_with_engine(columns, cells)?,
        };
        finish(&text, self.max_chars)
    }

    fn render_with_engine(
        &self,
        columns: Arc<Columns>,
        cells: &[String],
    ) -> Result<String, RenderError> {
        let row = Arc::new(Row {
            columns,
            cells: cells.to_vec(),
        });
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| RenderError::Row(describe(&e)))?;
        let context = minijinja::Value::from_object(Context(row));
        // Whitespace around the text is trimmed afterwards, so the cap leaves room for it.
        let mut out = Capped {
            text: Vec::new(),
            cap: self.max_chars.saturating_mul(4).saturating_add(1 << 16),
        };
        match template.render_captured_to(context, &mut out) {
            Ok(_) => String::from_utf8(out.text).map_err(|_| {
                RenderError::Row("the template wrote something that is not text".into())
            }),
            Err(e) if e.kind() == ErrorKind::WriteFailure => Err(RenderError::Runaway(format!(
                "the rendered user_requirement is far longer than the limit of {} characters (limits.max_requirement_chars)",
                self.max_chars
            ))),
            Err(e) => Err(classify(&e)),
        }
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
                    plain: plain_pieces(&self.source, names, &self.env),
                });
                *cached = Some(c.clone());
                c
            }
        }
    }
}

fn finish(text: &str, max_chars: usize) -> Result<String, RenderError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RenderError::Row(
            "the rendered user_requirement is empty".to_string(),
        ));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(RenderError::Row(format!(
            "the rendered user_requirement is {chars} characters long, over the limit of {max_chars} (limits.max_requirement_chars)"
        )));
    }
    Ok(text.to_string())
}

/// An engine error as one of the two kinds.
fn classify(e: &minijinja::Error) -> RenderError {
    let help = match e.kind() {
        ErrorKind::UnknownFilter | ErrorKind::UnknownTest => {
            "use a filter or test minijinja has, e.g. `upper`, `lower`, `title`, `trim`, `default` (see https://docs.rs/minijinja/latest/minijinja/filters/)"
        }
        ErrorKind::UnknownFunction | ErrorKind::UnknownMethod | ErrorKind::UnknownBlock => {
            "use only functions and methods minijinja has (see https://docs.rs/minijinja/latest/minijinja/functions/)"
        }
        ErrorKind::TooManyArguments | ErrorKind::MissingArgument => {
            "give the filter or function the arguments it takes"
        }
        ErrorKind::OutOfFuel => {
            "the template does too much work for one call (a loop inside a loop?): make it simpler"
        }
        ErrorKind::SyntaxError | ErrorKind::TemplateNotFound | ErrorKind::BadInclude => {
            "fix the template"
        }
        _ => return RenderError::Row(describe(e)),
    };
    RenderError::Template {
        message: describe(e),
        help,
    }
}

/// The output of one rendering, refused past `cap` bytes.
struct Capped {
    text: Vec<u8>,
    cap: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > self.cap {
            return Err(std::io::Error::other("the rendered text is too long"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A list's header, its names in sorted order (the order `row` is iterated in), and the
/// template as plain pieces over this header when it is that simple.
#[derive(Debug)]
struct Columns {
    names: Vec<String>,
    sorted: Vec<usize>,
    plain: Option<Vec<Piece>>,
}

/// Most templates are text and `{{ column }}` and nothing else. Those are rendered by joining
/// the pieces, which is what the engine does with them, minus its per-row setup (a sixth of
/// the time of validating a large list). Anything else, down to a `{{- name }}`, a name that
/// is not a column or a keyword, goes through minijinja; a property test holds the two to the
/// same output.
#[derive(Debug)]
enum Piece {
    Text(String),
    Cell(usize),
}

fn plain_pieces(source: &str, columns: &[String], env: &Environment) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = source;
    loop {
        let Some(start) = rest.find('{') else {
            if !rest.is_empty() {
                pieces.push(Piece::Text(rest.to_string()));
            }
            return Some(pieces);
        };
        match rest[start + 1..].chars().next() {
            Some('%' | '#') => return None,
            Some('{') => {}
            _ => {
                // A lone `{` is text; keep it with what precedes it.
                let (text, after) = rest.split_at(start + 1);
                push_text(&mut pieces, text);
                rest = after;
                continue;
            }
        }
        push_text(&mut pieces, &rest[..start]);
        let inner = &rest[start + 2..];
        let end = inner.find("}}")?;
        let name = inner[..end].trim_matches([' ', '\t', '\n', '\r']);
        if !is_plain_name(name) || env.globals().any(|(global, _)| global == name) {
            return None;
        }
        pieces.push(Piece::Cell(columns.iter().position(|c| c == name)?));
        rest = &inner[end + 2..];
    }
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    match pieces.last_mut() {
        Some(Piece::Text(t)) => t.push_str(text),
        _ if text.is_empty() => {}
        _ => pieces.push(Piece::Text(text.to_string())),
    }
}

/// A name the engine reads as one variable: ASCII letters, digits and `_`, or common CJK
/// ideographs, not starting with a digit, and not a word the engine gives a meaning of its own.
fn is_plain_name(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if",
        "else", "loop", "self", "super", "row",
    ];
    let cjk = |c: char| matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}');
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || cjk(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || cjk(c))
        && !RESERVED.contains(&name)
}

/// The plain template filled in; `None` for a row without one of its cells (the engine then
/// reports it).
fn plain_render(pieces: &[Piece], cells: &[String]) -> Option<String> {
    let size = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => text.len(),
            Piece::Cell(i) => cells.get(*i).map_or(0, String::len),
        })
        .sum();
    let mut out = String::with_capacity(size);
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Cell(i) => out.push_str(cells.get(*i)?),
        }
    }
    Some(out)
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
    use super::{RenderError, Template, finish};
    use proptest::prelude::*;

    const MAX: usize = crate::config::campaign::DEFAULT_MAX_REQUIREMENT_CHARS;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn variables_and_rendering() {
        let t = Template::compile(
            "Call {{ name }} about {{ date }}.{% for i in range(1) %}{% endfor %}\n",
            MAX,
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
        let t = Template::compile("请提醒{{ 姓名 }}，{{ row[\"预约 时间\"] }}", MAX).unwrap();
        assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["姓名"]);
        let text = t
            .render(&cols(&["姓名", "预约 时间"]), &cols(&["王芳", "9点"]))
            .unwrap();
        assert_eq!(text, "请提醒王芳，9点");
    }

    #[test]
    fn empty_result_and_syntax_errors() {
        let t = Template::compile("{{ note }}", MAX).unwrap();
        assert_eq!(
            t.render(&cols(&["note"]), &cols(&["  "])),
            Err(RenderError::Row(
                "the rendered user_requirement is empty".into()
            ))
        );
        match Template::compile("Call {{ name", MAX) {
            Err(syntax) => assert!(syntax.contains("syntax error"), "{syntax}"),
            Ok(_) => panic!("an unclosed tag compiled"),
        }
    }

    #[test]
    fn an_unknown_filter_is_the_templates_fault_and_named() {
        let t = Template::compile("Call {{ name|uppercase }}", MAX).unwrap();
        match t.render(&cols(&["name"]), &cols(&["王芳"])) {
            Err(RenderError::Template { message, .. }) => {
                assert!(message.contains("uppercase"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // An operation the row's value does not allow is the row's.
        let t = Template::compile("{{ n|int + 1 }} {{ n * n }}", MAX).unwrap();
        assert!(matches!(
            t.render(&cols(&["n"]), &cols(&["x"])),
            Err(RenderError::Row(_))
        ));
    }

    #[test]
    fn work_and_length_are_bounded() {
        let nested = Template::compile(
            "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}x",
            MAX,
        )
        .unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            nested.render(&[], &[]),
            Err(RenderError::Template { .. })
        ));
        // Fuel, not the clock, stops it: a hundred million iterations would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        let long = Template::compile("{{ 'x' * 2001 }}", MAX).unwrap();
        match long.render(&[], &[]) {
            Err(RenderError::Row(reason)) => assert!(
                reason.contains("2001 characters") && reason.contains("max_requirement_chars"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        let huge = Template::compile("{{ 'x' * 50000000 }}", MAX).unwrap();
        assert!(matches!(
            huge.render(&[], &[]),
            Err(RenderError::Runaway(_))
        ));
        let fits = Template::compile("{{ 'x' * 2000 }}", MAX).unwrap();
        assert_eq!(fits.render(&[], &[]).map(|t| t.len()), Ok(2000));
    }

    #[test]
    fn a_template_of_text_and_columns_takes_the_plain_path() {
        let t = Template::compile("请致电{{ name }}，提醒其{{日期}}的预约。{ }", MAX).unwrap();
        let columns = cols(&["name", "日期"]);
        assert!(t.columns_for(&columns).plain.is_some());
        let text = t.render(&columns, &cols(&["王芳", "12月1日"])).unwrap();
        assert_eq!(text, "请致电王芳，提醒其12月1日的预约。{ }");
        let engine = Template::compile("{{ name }}{% if true %}!{% endif %}", MAX).unwrap();
        assert!(engine.columns_for(&columns).plain.is_none());
    }

    /// Template pieces, mostly the plain kind (so that whole templates often are), and every
    /// kind that must leave the plain path.
    fn fragment() -> impl Strategy<Value = String> {
        let plain = prop_oneof![
            Just("{{ name }}".to_string()),
            Just("{{name}}".to_string()),
            Just("{{ 姓名 }}".to_string()),
            Just("{{\tx_1\n}}".to_string()),
            "[{}%#\\ \n请a-z]{0,4}",
        ];
        let other = prop_oneof![
            Just("{{ true }}".to_string()),
            Just("{{ none }}".to_string()),
            Just("{{ row }}".to_string()),
            Just("{{ range }}".to_string()),
            Just("{{- name }}".to_string()),
            Just("{{ name -}}".to_string()),
            Just("{{ missing }}".to_string()),
            Just("{{ name|upper }}".to_string()),
            Just("{{ name ~ x_1 }}".to_string()),
            Just("{% if name %}".to_string()),
            Just("{% endif %}".to_string()),
            Just("{# note #}".to_string()),
            Just("{{{ name }}}".to_string()),
        ];
        prop_oneof![6 => plain, 1 => other]
    }

    proptest! {
        #[test]
        fn plain_templates_render_as_the_engine_renders_them(
            fragments in proptest::collection::vec(fragment(), 0..8),
            cells in proptest::collection::vec("[ a-z请{}%#\n]{0,6}", 4),
        ) {
            let source = fragments.concat();
            let Ok(t) = Template::compile(&source, MAX) else { return Ok(()) };
            let columns = cols(&["name", "姓名", "x_1", "true"]);
            let engine = t
                .render_with_engine(t.columns_for(&columns), &cells)
                .and_then(|text| finish(&text, MAX));
            prop_assert_eq!(t.render(&columns, &cells), engine, "template {:?}", source);
        }
    }
}
