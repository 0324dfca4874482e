//! Outcome tags: simple rules over what the person said, for the results people act on.
//!
//! A campaign names tags and the phrases that earn them (`confirmed: { user_says_any: [确认,
//! 好的] }`); a call gets every tag one of whose phrases appears in a `user:` turn of its
//! transcript (case-insensitive). Only the person's words count, never the AI caller's, which
//! quote the requirement. The tag `opt_out` has a consequence: the number goes on the
//! campaign's do-not-call list, so no redial or later run rings them again.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The tag that puts a number on the do-not-call list.
pub const OPT_OUT: &str = "opt_out";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub user_says_any: Vec<String>,
}

/// Tag name → rule, in name order.
pub type Rules = BTreeMap<String, Rule>;

/// The tags `transcript` (`role: text` lines) earns under `rules`.
pub fn tags(rules: &Rules, transcript: &str) -> Vec<String> {
    let said: Vec<String> = transcript
        .lines()
        .filter_map(|line| line.strip_prefix("user:"))
        .map(|text| text.to_lowercase())
        .collect();
    rules
        .iter()
        .filter(|(_, rule)| {
            rule.user_says_any.iter().any(|phrase| {
                let phrase = phrase.trim().to_lowercase();
                !phrase.is_empty() && said.iter().any(|s| s.contains(&phrase))
            })
        })
        .map(|(tag, _)| tag.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_persons_words_count() {
        let rules: Rules = serde_norway::from_str(
            "confirmed: { user_says_any: [确认, 好的, yes] }\nopt_out: { user_says_any: [不要再打, stop calling] }\n",
        )
        .unwrap();
        let transcript = "assistant: 请确认您的预约，好的吗？\nuser: Yes, 好的\nassistant: Please stop calling? no";
        assert_eq!(tags(&rules, transcript), ["confirmed"]);
        assert_eq!(tags(&rules, "user: 别再打了，不要再打"), ["opt_out"]);
        assert!(tags(&rules, "").is_empty());
    }
}
