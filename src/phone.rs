//! Phone numbers: the one place where a cell from a contact list becomes a number to dial.
//!
//! The normalised number is a contact's identity (duplicates, the database key, the idempotency
//! key), so it must be the same string however the user typed it: `+86 138-0013-8000`,
//! `0086 13800138000` and `138 0013 8000` all become `13800138000`, and a landline keeps its area
//! code (`010-6552 9988` becomes `01065529988`). The `phonenumber` crate with region CN decides
//! validity; this module only refuses input it would otherwise "fix" by guessing (letters are
//! read as keypad digits by libphonenumber, which would ring a number nobody wrote).

use phonenumber::country::Id as Country;
use phonenumber::{Mode, PhoneNumber};

/// Why a cell is not a number stepcall will dial. The text is shown to the user as the reason.
pub type Reason = String;

/// Normalises `raw` to the national digits of a valid mainland-China number.
pub fn normalize(raw: &str) -> Result<String, Reason> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("the phone number is empty".to_string());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '+')))
    {
        return Err(format!(
            "`{text}` contains `{bad}`, which is not part of a phone number: keep only digits, spaces, dashes and a leading +86"
        ));
    }
    let number: PhoneNumber = phonenumber::parse(Some(Country::CN), text)
        .map_err(|_| format!("`{text}` is not a phone number"))?;
    if number.code().value() != 86 {
        return Err(format!(
            "`{text}` is not a mainland China number (country code +{}): Stepone only calls +86 numbers",
            number.code().value()
        ));
    }
    if !phonenumber::is_valid(&number) {
        return Err(format!(
            "`{text}` is not a valid China number: a mobile has 11 digits starting with 1, a landline starts with its area code (010, 021, 0755, ...)"
        ));
    }
    let national: String = number
        .format()
        .mode(Mode::National)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Ok(national)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spellings_of_one_mobile_agree() {
        for raw in [
            "13800138000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "138 0013 8000",
            " +8613800138000 ",
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok("13800138000"), "{raw}");
        }
    }

    #[test]
    fn landlines_keep_their_area_code() {
        assert_eq!(normalize("010-6552 9988").as_deref(), Ok("01065529988"));
        assert_eq!(normalize("(021) 6888 1234").as_deref(), Ok("02168881234"));
    }

    #[test]
    fn guesses_are_refused() {
        assert!(normalize("").is_err());
        assert!(
            normalize("1380013800").is_err(),
            "10 digits is not a mobile"
        );
        assert!(
            normalize("138001380001").is_err(),
            "12 digits is not a mobile"
        );
        assert!(
            normalize("1-800-FLOWERS").is_err(),
            "letters are never keypad digits"
        );
        assert!(normalize("+1 650 253 0000").unwrap_err().contains("+1"));
        assert!(normalize("12345").is_err());
    }
}
