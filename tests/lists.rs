//! Contact lists as people really have them: Excel's encodings and workbooks, Chinese headers,
//! numbers typed every way there is. Each fixture is made here, byte for byte, so the test
//! shows exactly what the file holds.

use std::path::Path;

use crate::harness::Workspace;

/// Chinese headers and messy numbers; the expected normalised number, or None when the row
/// must be refused.
const ROWS: [(&str, &str, Option<&str>); 7] = [
    ("王芳", "+86 138-0013-8000", Some("13800138000")),
    ("张伟", "１３９１２３４５６７８", Some("13912345678")),
    ("李娜", "13712345678.0", Some("13712345678")),
    ("刘洋", "1.38001E+10", None),
    ("陈杰", "138 0013 8001 (office)", Some("13800138001")),
    ("杨静", "13800138002/13900139002", None),
    ("赵敏", "010-6552 9988", Some("01065529988")),
];

fn table(delimiter: char) -> String {
    let mut text = format!("姓名{delimiter}手机号{delimiter}日期\r\n");
    for (name, phone, _) in ROWS {
        text.push_str(&format!("{name}{delimiter}{phone}{delimiter}12月3日\r\n"));
    }
    text
}

fn campaign(ws: &Workspace, contacts: &str, extra: &str) -> String {
    let path = ws.write(
        "c.yaml",
        &format!(
            "name: lists\ncontacts: {contacts}\nphone_column: 手机号\nhours: always\n\
             user_requirement: \"请提醒{{{{ 姓名 }}}}{{{{ row[\\\"日期\\\"] }}}}来复诊\"\n{extra}"
        ),
    );
    path.to_str().unwrap().to_string()
}

/// The numbers `preview` would dial, in order.
fn dialled(ws: &Workspace, campaign: &str) -> Vec<String> {
    ws.test()
        .args(["preview", campaign, "-n", "20"])
        .stdout_any()
        .status(0)
        .stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("── row "))
        .map(|l| {
            l.split(" · ")
                .nth(1)
                .unwrap()
                .trim_end_matches(" ──")
                .to_string()
        })
        .collect()
}

fn expected() -> Vec<String> {
    ROWS.iter()
        .filter_map(|(_, _, n)| n.map(str::to_string))
        .collect()
}

fn check(ws: &Workspace, campaign: &str, encoding: &str) {
    assert_eq!(dialled(ws, campaign), expected(), "{encoding}");
    let stdout = ws
        .test()
        .args(["validate", campaign])
        .stdout_any()
        .status(4)
        .stdout();
    assert!(
        stdout.contains(encoding),
        "says how the list was read ({encoding}): {stdout}"
    );
    assert!(stdout.contains("7 rows · 5 valid · 2 invalid"), "{stdout}");
    assert!(
        stdout.contains("row 5, column 手机号: ") && stdout.contains("scientific notation"),
        "{stdout}"
    );
    assert!(
        stdout.contains("row 7, column 手机号: ") && stdout.contains("several numbers"),
        "{stdout}"
    );
    let preview = ws
        .test()
        .args(["preview", campaign, "-n", "1"])
        .stdout_any()
        .status(0)
        .stdout();
    assert!(
        preview.contains("请提醒王芳12月3日来复诊"),
        "Chinese headers reach the template: {preview}"
    );
}

#[test]
fn a_gbk_csv_from_chinese_excel() {
    let ws = Workspace::new();
    let text = table(',');
    let (bytes, _, _) = encoding_rs::GBK.encode(&text);
    std::fs::write(ws.path("gbk.csv"), &bytes).unwrap();
    check(&ws, &campaign(&ws, "gbk.csv", ""), "gb18030 (detected)");
}

#[test]
fn a_utf8_csv_with_a_byte_order_mark() {
    let ws = Workspace::new();
    let mut bytes = vec![0xef, 0xbb, 0xbf];
    bytes.extend_from_slice(table(',').as_bytes());
    std::fs::write(ws.path("bom.csv"), &bytes).unwrap();
    check(
        &ws,
        &campaign(&ws, "bom.csv", ""),
        "UTF-8 (byte-order mark)",
    );
}

#[test]
fn excel_unicode_text_is_utf16_and_tab_separated() {
    let ws = Workspace::new();
    let mut bytes = vec![0xff, 0xfe];
    for unit in table('\t').encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    std::fs::write(ws.path("unicode.txt"), &bytes).unwrap();
    check(
        &ws,
        &campaign(&ws, "unicode.txt", ""),
        "UTF-16LE (byte-order mark), tab-separated",
    );
}

#[test]
fn a_semicolon_csv_in_an_encoding_the_campaign_names() {
    let ws = Workspace::new();
    let text = table(';');
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    std::fs::write(ws.path("semi.csv"), &bytes).unwrap();
    check(
        &ws,
        &campaign(&ws, "semi.csv", "encoding: gb18030\n"),
        "gb18030 (from the campaign), `;`-separated",
    );
}

/// A minimal .xlsx: phone numbers typed as numbers are numeric cells, the rest inline text.
fn write_xlsx(path: &Path, sheet_name: &str) {
    let mut cells = String::new();
    let row = |r: usize, values: &[&str]| {
        let mut xml = format!("<row r=\"{r}\">");
        for (c, v) in values.iter().enumerate() {
            let col = (b'A' + c as u8) as char;
            if !v.is_empty() && v.chars().all(|ch| ch.is_ascii_digit()) {
                xml.push_str(&format!("<c r=\"{col}{r}\"><v>{v}</v></c>"));
            } else {
                xml.push_str(&format!(
                    "<c r=\"{col}{r}\" t=\"inlineStr\"><is><t>{v}</t></is></c>"
                ));
            }
        }
        xml + "</row>"
    };
    cells.push_str(&row(1, &["姓名", "手机号", "日期"]));
    for (i, (name, phone, _)) in ROWS.iter().enumerate() {
        // A number typed into Excel is stored as a float; the digits must come back intact.
        let phone = if *name == "王芳" {
            "13800138000"
        } else {
            phone
        };
        cells.push_str(&row(i + 2, &[name, phone, "12月3日"]));
    }
    crate::harness::write_xlsx(path, sheet_name, &cells, &[]);
}

#[test]
fn an_xlsx_workbook_read_directly_with_numbers_as_typed() {
    let ws = Workspace::new();
    write_xlsx(&ws.path("contacts.xlsx"), "客户");
    check(
        &ws,
        &campaign(&ws, "contacts.xlsx", ""),
        "Excel workbook, sheet `客户`",
    );
    let missing = campaign(&ws, "contacts.xlsx", "sheet: Sheet9\n");
    ws.test()
        .args(["validate", &missing])
        .stderr_contains("no sheet `Sheet9` (sheets: 客户)")
        .status(2);
}

#[test]
fn several_numbers_in_a_cell_become_one_contact_each_with_split() {
    let ws = Workspace::new();
    ws.write("list.csv", &table(','));
    let c = campaign(&ws, "list.csv", "multi_phone: split\n");
    let numbers = dialled(&ws, &c);
    assert!(
        numbers.contains(&"13800138002".to_string())
            && numbers.contains(&"13900139002".to_string()),
        "{numbers:?}"
    );
    assert_eq!(numbers.len(), 7);
}

#[test]
fn invalid_rows_go_back_in_the_lists_own_encoding_with_a_reason() {
    let ws = Workspace::new();
    let text = table(',');
    let (bytes, _, _) = encoding_rs::GBK.encode(&text);
    std::fs::write(ws.path("gbk.csv"), &bytes).unwrap();
    let c = campaign(&ws, "gbk.csv", "");
    let bad = ws.path("bad.csv");
    ws.test()
        .args(["validate", &c, "--invalid-out", bad.to_str().unwrap()])
        .stdout_any()
        .status(4);
    let written = std::fs::read(&bad).unwrap();
    let (decoded, _, had_errors) = encoding_rs::GBK.decode(&written);
    assert!(
        !had_errors && std::str::from_utf8(&written).is_err(),
        "written in GBK, as the list was"
    );
    let lines: Vec<&str> = decoded.lines().collect();
    assert_eq!(lines[0], "姓名,手机号,日期,reason");
    assert_eq!(lines.len(), 3, "{decoded}");
    assert!(
        lines[1].starts_with("刘洋,1.38001E+10,12月3日,"),
        "{}",
        lines[1]
    );
}
