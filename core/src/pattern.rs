//! OSC 1.0 address-pattern matching.
//!
//! A pattern matches an address when both have the same number of `/`-separated parts and each
//! pattern part matches its address part, where (OSC 1.0, "OSC Message Dispatching and Pattern
//! Matching"):
//! - `?` matches any single character, `*` any sequence of zero or more characters;
//! - `[abc]`, `[a-z]` match one character in the set, `[!a-z]` one character not in it (a `-`
//!   first or last is literal);
//! - `{foo,bar}` matches any of the comma-separated strings;
//! - anything else matches itself.
//!
//! Written here rather than taken from rosc: rosc 0.11.4's `Matcher` lets a character class match
//! one *or more* characters (`/cue/1[0-2]` matches `/cue/100`). Backtracking is bounded by
//! [`STEP_BUDGET`] per (pattern, address) pair, and a receiver bounds a whole datagram with
//! [`matches_within`] and [`DATAGRAM_STEP_BUDGET`]: matching one pattern against hundreds of
//! mapped addresses, 64 messages a packet, would otherwise cost 64 × 256 × [`STEP_BUDGET`] steps
//! (over a second) for one hostile packet. Recursion depth is at most the pattern's length plus
//! one (receivers refuse patterns longer than a few hundred bytes).

/// Matching steps allowed per (pattern, address) pair.
pub const STEP_BUDGET: u32 = 20_000;

/// Matching steps a receiver allows for all the patterns of one datagram: about 1 ms of one
/// core in a release build (a step is a few ns; `cargo xtask bench` measures it). An ordinary
/// pattern costs a handful of steps per mapped address, so thousands of real pattern/address
/// pairs fit.
pub const DATAGRAM_STEP_BUDGET: u32 = 250_000;

/// Why a pattern is not a valid OSC 1.0 address pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// It does not start with `/`.
    #[error("an address pattern starts with '/'")]
    NoLeadingSlash,
    /// A `[` or `{` is not closed (or a `]`/`}` not opened) within its part.
    #[error("unbalanced '[' or '{{'")]
    Unbalanced,
    /// A space, `#` or `,`, or a non-printable or non-ASCII character.
    #[error("character {0:?} is not allowed in an address pattern")]
    BadCharacter(char),
}

/// Checks that `pattern` is a valid address pattern.
pub fn validate(pattern: &str) -> Result<(), PatternError> {
    if !pattern.starts_with('/') {
        return Err(PatternError::NoLeadingSlash);
    }
    let (mut in_class, mut in_choice) = (false, false);
    for c in pattern.chars() {
        if !c.is_ascii() || c.is_ascii_control() || c == ' ' || c == '#' || (c == ',' && !in_choice) {
            return Err(PatternError::BadCharacter(c));
        }
        match c {
            '[' if in_class || in_choice => return Err(PatternError::Unbalanced),
            '[' => in_class = true,
            ']' if !in_class => return Err(PatternError::Unbalanced),
            ']' => in_class = false,
            '{' if in_class || in_choice => return Err(PatternError::Unbalanced),
            '{' => in_choice = true,
            '}' if !in_choice => return Err(PatternError::Unbalanced),
            '}' => in_choice = false,
            '/' if in_class || in_choice => return Err(PatternError::Unbalanced),
            _ => {}
        }
    }
    if in_class || in_choice { Err(PatternError::Unbalanced) } else { Ok(()) }
}

/// Whether `pattern` contains any pattern character (else it can only match itself).
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', ']', '{', '}'])
}

/// Whether `pattern` matches the plain address `address`. An invalid pattern matches nothing.
pub fn matches(pattern: &str, address: &str) -> bool {
    let mut budget = STEP_BUDGET;
    matches_with_budget(pattern, address, &mut budget)
}

/// [`matches`](fn@matches) drawing its steps from `budget` (at most [`STEP_BUDGET`] of them): `Some(result)`,
/// or `None` when the steps ran out before the answer was known (the budget is then 0, or this
/// pair's own limit was reached).
pub fn matches_within(pattern: &str, address: &str, budget: &mut u32) -> Option<bool> {
    let mut steps = (*budget).min(STEP_BUDGET);
    let before = steps;
    let matched = matches_with_budget(pattern, address, &mut steps);
    *budget -= before - steps;
    if matched || steps > 0 { Some(matched) } else { None }
}

/// [`matches`] with the step budget passed in (and left with what remains).
fn matches_with_budget(pattern: &str, address: &str, budget: &mut u32) -> bool {
    if validate(pattern).is_err() {
        return false;
    }
    let mut pattern_parts = pattern.split('/');
    let mut address_parts = address.split('/');
    loop {
        match (pattern_parts.next(), address_parts.next()) {
            (None, None) => return true,
            (Some(p), Some(a)) => {
                if !part_matches(p.as_bytes(), a.as_bytes(), budget) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Matches one part (no `/` in either).
fn part_matches(p: &[u8], a: &[u8], budget: &mut u32) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some((&first, rest)) = p.split_first() else { return a.is_empty() };
    match first {
        b'*' => {
            // Collapse runs of '*'; try every split.
            let rest = trim_stars(rest);
            if rest.is_empty() {
                return true;
            }
            (0..=a.len()).any(|i| part_matches(rest, &a[i..], budget))
        }
        b'?' => !a.is_empty() && part_matches(rest, &a[1..], budget),
        b'[' => {
            let Some(close) = rest.iter().position(|&c| c == b']') else { return false };
            let (set, after) = (&rest[..close], &rest[close + 1..]);
            match a.split_first() {
                Some((&c, a_rest)) => class_contains(set, c) && part_matches(after, a_rest, budget),
                None => false,
            }
        }
        b'{' => {
            let Some(close) = rest.iter().position(|&c| c == b'}') else { return false };
            let (choices, after) = (&rest[..close], &rest[close + 1..]);
            choices
                .split(|&c| c == b',')
                .any(|choice| a.starts_with(choice) && part_matches(after, &a[choice.len()..], budget))
        }
        literal => a.first() == Some(&literal) && part_matches(rest, &a[1..], budget),
    }
}

fn trim_stars(mut p: &[u8]) -> &[u8] {
    while let Some((&b'*', rest)) = p.split_first() {
        p = rest;
    }
    p
}

/// Whether the character class body `set` (between `[` and `]`) contains `c`.
fn class_contains(set: &[u8], c: u8) -> bool {
    let (negated, set) = match set.split_first() {
        Some((&b'!', rest)) if !rest.is_empty() => (true, rest),
        _ => (false, set),
    };
    let mut found = false;
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == b'-' {
            found |= (set[i]..=set[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= set[i] == c;
            i += 1;
        }
    }
    found != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc_1_0_examples() {
        let yes = [
            ("/cue/1", "/cue/1"),
            ("/cue/?", "/cue/7"),
            ("/cue/1[0-2]", "/cue/12"),
            ("/cue/1[!0-2]", "/cue/17"),
            ("/cue/[abc]", "/cue/b"),
            ("/cue/[a-]", "/cue/-"),
            ("/cue/{intro,outro}", "/cue/outro"),
            ("/cue/{in,intro}", "/cue/intro"),
            ("/cue/*", "/cue/anything"),
            ("/cue/*", "/cue/"),
            ("/*/1", "/trigger/1"),
            ("/cue/*o", "/cue/intro"),
            ("/cue/i*t*o", "/cue/intro"),
            ("/cue/**", "/cue/x"),
            ("/{cue,trigger}/[0-9]*", "/trigger/42"),
        ];
        for (p, a) in yes {
            assert!(matches(p, a), "{p} should match {a}");
        }
        let no = [
            ("/cue/1[0-2]", "/cue/100"),
            ("/cue/1[!0-2]", "/cue/11"),
            ("/cue/?", "/cue/12"),
            ("/cue/?", "/cue/"),
            ("/cue/*", "/cue/a/b"),
            ("/*", "/cue/1"),
            ("/cue/{intro,outro}", "/cue/intros"),
            ("/cue/1", "/cue/10"),
            ("/cue/[", "/cue/["),
            ("cue/1", "cue/1"),
            ("/cue/*x", "/cue/intro"),
        ];
        for (p, a) in no {
            assert!(!matches(p, a), "{p} should not match {a}");
        }
    }

    #[test]
    fn validation() {
        assert_eq!(validate("/cue/[0-9]"), Ok(()));
        assert_eq!(validate("/cue/{a,b}"), Ok(()));
        assert_eq!(validate("cue"), Err(PatternError::NoLeadingSlash));
        assert_eq!(validate("/cue/[0-9"), Err(PatternError::Unbalanced));
        assert_eq!(validate("/cue/{a,b"), Err(PatternError::Unbalanced));
        assert_eq!(validate("/cue/a]"), Err(PatternError::Unbalanced));
        assert_eq!(validate("/cue/[a/b]"), Err(PatternError::Unbalanced));
        assert_eq!(validate("/cue/a b"), Err(PatternError::BadCharacter(' ')));
        assert_eq!(validate("/cue/a,b"), Err(PatternError::BadCharacter(',')));
        assert_eq!(validate("/cue/é"), Err(PatternError::BadCharacter('é')));
        assert!(is_pattern("/cue/*") && !is_pattern("/cue/1"));
    }

    #[test]
    fn hostile_patterns_are_bounded() {
        let pattern = format!("/{}x", "*a".repeat(40));
        let address = format!("/{}", "a".repeat(200));
        let mut budget = STEP_BUDGET;
        assert!(!matches_with_budget(&pattern, &address, &mut budget));
        assert_eq!(budget, 0, "the search stopped because the budget ran out");
        // An ordinary pattern uses a handful of steps.
        let mut budget = STEP_BUDGET;
        assert!(matches_with_budget("/cue/{intro,outro}", "/cue/intro", &mut budget));
        assert!(STEP_BUDGET - budget < 20);
    }

    #[test]
    fn a_shared_budget_bounds_many_pairs_and_says_when_it_ran_out() {
        let hostile = format!("/{}x", "{,}".repeat(84));
        let mut budget = DATAGRAM_STEP_BUDGET;
        let mut undecided = 0;
        for n in 0..256 {
            if matches_within(&hostile, &format!("/cue/{n}"), &mut budget).is_none() {
                undecided += 1;
            }
        }
        assert_eq!(budget, 0, "the hostile pattern spent the whole budget");
        assert!(undecided > 0, "and was told so");
        assert_eq!(matches_within("/cue/1", "/cue/1", &mut budget), None, "nothing is left for later pairs");
        let mut budget = DATAGRAM_STEP_BUDGET;
        assert_eq!(matches_within("/cue/{1,2}", "/cue/2", &mut budget), Some(true));
        assert_eq!(matches_within("/cue/{1,2}", "/cue/3", &mut budget), Some(false));
        assert!(DATAGRAM_STEP_BUDGET - budget < 40);
    }
}
