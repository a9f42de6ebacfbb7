//! The built-in detectors: one bounded regular expression per shape of
//! secret, and a validator that turns a regex candidate into the exact span
//! to mask, or rejects it.
//!
//! Regexes find candidates cheaply in one pass; validators carry the
//! knowledge a regex cannot (Luhn, mod-97, SSN area rules, brand prefixes)
//! and look one or two bytes outside the candidate to keep false positives
//! down (a digit run that continues as `.5` is a decimal, not a card).
//!
//! Every regex is bounded (`{m,n}`, never `*`/`+`), so the stream masker can
//! hold back a finite window. Secrets that have no natural upper length
//! (tokens, JWTs) match a bounded prefix and then extend over their alphabet
//! ([`Extent::Tail`]); private keys are masked from `BEGIN` through `END`
//! ([`Extent::Block`]).

use gw_policy::model::DETECTORS;

#[cfg(test)]
mod tests;

/// A built-in detector, by the name policy files use (see [`DETECTORS`]).
///
/// Each variant says what it matches and what keeps false positives down.
/// Digit-based detectors never match inside a longer numeric token: a run
/// preceded or followed by `.`, `-`, `/` or `:` and another digit is a
/// decimal, date, version, time or address, not a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// 13–19 digits, optionally grouped with spaces or dashes, that pass
    /// Luhn *and* carry an issuer prefix with a matching length (Visa,
    /// Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). A
    /// trailing digit group after a valid number is left alone.
    CreditCard,
    /// `local@domain.tld` with an alphabetic TLD. Not masked: TLDs that are
    /// file extensions (`logo@2x.png`) or private names (`.internal`,
    /// `.local`, `.lan`...), and `user@host` without a dot. Note that a
    /// prompt like `deploy@web1.example.com:~$` is masked.
    Email,
    /// `AAA-GG-SSSS` with area not 000, 666 or 9xx, group not 00, serial not
    /// 0000. Undashed nine-digit numbers are not masked (too many ids).
    UsSsn,
    /// `+` and 8–15 digits (solid or grouped), or North American numbers
    /// with separators (`(415) 555-2671`, `415.555.2671`, `1-800-...`).
    /// Bare digit runs without `+` or separators are never phones.
    Phone,
    /// Upper-case IBANs, solid or in groups of four, with the length of a
    /// known country and a valid mod-97 checksum.
    Iban,
    /// `AKIA`/`ASIA` and 16 upper-case letters or digits, as a whole word.
    AwsAccessKey,
    /// 40 base64 characters after a hint (`aws_secret_access_key =`,
    /// `"SecretAccessKey": "`), where only the 40 characters are masked;
    /// or standalone, when the 40 characters are a whole run with at least
    /// two upper-case letters, two lower-case letters and a digit, at most
    /// three `/` and no leading `/` (so git SHAs and paths pass).
    AwsSecretKey,
    /// `eyJ` + 10–1024 base64url characters, `.eyJ` (a JSON payload), then
    /// everything in the base64url-and-dot run that follows (signature,
    /// JWE parts). Headers longer than 1024 characters are not detected.
    Jwt,
    /// `-----BEGIN ... PRIVATE KEY-----` (also `PGP PRIVATE KEY BLOCK`)
    /// through the matching `END` line, however many lines; to the end of
    /// the text if it never ends, and an error if it does not end within
    /// [`BLOCK_CAP`](crate::BLOCK_CAP) bytes.
    PrivateKey,
    /// Prefixed tokens, masked through the end of their alphabet run:
    /// GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`),
    /// Slack (`xox[abprs]-`), Stripe (`sk_live_`, `rk_live_`, `sk_test_`),
    /// GitLab (`glpat-`), Google (`AIza`), Anthropic/OpenAI (`sk-ant-`,
    /// `sk-proj-`, `sk-svcacct-`), npm (`npm_`), Hugging Face (`hf_`),
    /// SendGrid (`SG.x.y`). Not preceded by a word character.
    ApiToken,
}

impl Detector {
    pub const ALL: [Detector; 10] = [
        Detector::CreditCard,
        Detector::Email,
        Detector::UsSsn,
        Detector::Phone,
        Detector::Iban,
        Detector::AwsAccessKey,
        Detector::AwsSecretKey,
        Detector::Jwt,
        Detector::PrivateKey,
        Detector::ApiToken,
    ];

    /// The policy name (`credit-card`, `us-ssn`...), also used in markers.
    pub fn name(self) -> &'static str {
        // `Detector::ALL` is listed in the same order as `DETECTORS`; a test
        // keeps the two in step.
        DETECTORS[self as usize]
    }

    pub fn from_name(s: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// How a candidate is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    None,
    Card,
    Ssn,
    Phone,
    Iban,
    Email,
    AwsSecretHinted,
    AwsSecretBare,
}

/// How far the masked region reaches beyond the validated span.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Extent {
    /// Exactly the validated span.
    Match,
    /// The span plus every following byte in this alphabet.
    Tail(fn(u8) -> bool),
    /// Through the matching `-----END ... PRIVATE KEY-----` line.
    Block,
}

pub(crate) struct Builtin {
    pub(crate) detector: Detector,
    pub(crate) regex: &'static str,
    pub(crate) check: Check,
    pub(crate) extent: Extent,
}

/// The end of a private key block; searched only inside a block.
pub(crate) const KEY_END: &str = r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----";

// `\b{start-half}` (not preceded by a word character) anchors candidates at
// the start of a run, so a long run of digits or base64 yields one candidate,
// not one per byte. Order matters: at one start position the first pattern
// that matches wins, so specific shapes come before generic ones.
pub(crate) const BUILTINS: &[Builtin] = &[
    Builtin {
        detector: Detector::PrivateKey,
        regex: r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        check: Check::None,
        extent: Extent::Block,
    },
    Builtin {
        detector: Detector::Jwt,
        regex: r"\b{start-half}eyJ[A-Za-z0-9_-]{10,1024}\.eyJ[A-Za-z0-9_-]{8}",
        check: Check::None,
        extent: Extent::Tail(is_jwt_byte),
    },
    Builtin {
        detector: Detector::AwsSecretKey,
        regex: r#"(?i:aws_?secret(?:_?access)?_?key|secret_?access_?key)["']?[ \t]{0,4}[:=][ \t]{0,4}["']?[A-Za-z0-9/+]{40}"#,
        check: Check::AwsSecretHinted,
        extent: Extent::Match,
    },
    Builtin {
        detector: Detector::AwsAccessKey,
        regex: r"\b{start-half}(?:AKIA|ASIA)[A-Z0-9]{16}\b{end-half}",
        check: Check::None,
        extent: Extent::Match,
    },
    token(r"\b{start-half}gh[pousr]_[A-Za-z0-9]{30}", is_alnum),
    token(r"\b{start-half}github_pat_[A-Za-z0-9_]{30}", is_word),
    token(r"\b{start-half}xox[abprs]-[A-Za-z0-9-]{10}", is_token_byte),
    token(
        r"\b{start-half}[sr]k_(?:live|test)_[A-Za-z0-9]{16}",
        is_alnum,
    ),
    token(r"\b{start-half}glpat-[A-Za-z0-9_-]{20}", is_token_byte),
    token(r"\b{start-half}AIza[A-Za-z0-9_-]{35}", is_token_byte),
    token(
        r"\b{start-half}sk-(?:ant|proj|svcacct)-[A-Za-z0-9_-]{20}",
        is_token_byte,
    ),
    token(r"\b{start-half}npm_[A-Za-z0-9]{36}", is_alnum),
    token(r"\b{start-half}hf_[A-Za-z0-9]{30}", is_alnum),
    token(
        r"\b{start-half}SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{20}",
        is_token_byte,
    ),
    Builtin {
        detector: Detector::Email,
        // No start anchor: with an over-long local part the match starts
        // inside it, so the address is still masked (fail closed).
        regex: r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b{end-half}",
        check: Check::Email,
        extent: Extent::Match,
    },
    Builtin {
        detector: Detector::Iban,
        regex: r"\b{start-half}[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b{end-half}",
        check: Check::Iban,
        extent: Extent::Match,
    },
    Builtin {
        detector: Detector::CreditCard,
        regex: r"\b{start-half}[0-9](?:[ -]?[0-9]){12,18}\b{end-half}",
        check: Check::Card,
        extent: Extent::Match,
    },
    Builtin {
        detector: Detector::UsSsn,
        regex: r"\b{start-half}[0-9]{3}-[0-9]{2}-[0-9]{4}\b{end-half}",
        check: Check::Ssn,
        extent: Extent::Match,
    },
    Builtin {
        detector: Detector::Phone,
        // E.164 written solid, international with groups, and North
        // American with separators. Bare digit runs without `+` are never
        // phones: they are ids, counters and timestamps far more often.
        regex: concat!(
            r"\b{start-half}(?:",
            r"\+[1-9][0-9]{7,14}",
            r"|\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,4})(?:[ .-][0-9]{2,5}){1,4}",
            r"|(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}",
            r")\b{end-half}"
        ),
        check: Check::Phone,
        extent: Extent::Match,
    },
    Builtin {
        detector: Detector::AwsSecretKey,
        regex: r"\b{start-half}[A-Za-z0-9/+]{40}",
        check: Check::AwsSecretBare,
        extent: Extent::Match,
    },
];

const fn token(regex: &'static str, tail: fn(u8) -> bool) -> Builtin {
    Builtin {
        detector: Detector::ApiToken,
        regex,
        check: Check::None,
        extent: Extent::Tail(tail),
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_token_byte(b: u8) -> bool {
    is_word(b) || b == b'-'
}

fn is_jwt_byte(b: u8) -> bool {
    is_token_byte(b) || b == b'.'
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')
}

/// Validates a candidate `hay[s..e]`. `hay` holds context on both sides:
/// at least eight bytes before `s` (unless the text starts there) and the
/// byte at `e` (unless the text ends there). Returns the span to mask.
pub(crate) fn validate(check: Check, hay: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    let m = &hay[s..e];
    match check {
        Check::None => Some((s, e)),
        Check::Card => card(hay, s, e),
        Check::Ssn => (!continues_numeric(hay, s, e) && ssn_ok(m)).then_some((s, e)),
        Check::Phone => (!continues_numeric(hay, s, e) && phone_ok(m)).then_some((s, e)),
        Check::Iban => iban(hay, s, e),
        Check::Email => email_ok(m).then_some((s, e)),
        Check::AwsSecretHinted => {
            let next_ok = hay.get(e).is_none_or(|&b| !is_base64(b));
            next_ok.then_some((e - 40, e))
        }
        Check::AwsSecretBare => {
            let prev_ok = s == 0 || !is_base64(hay[s - 1]);
            let next_ok = hay.get(e).is_none_or(|&b| !is_base64(b));
            (prev_ok && next_ok && bare_secret_ok(m)).then_some((s, e))
        }
    }
}

/// True when the digits at `s..e` are part of a longer numeric token:
/// `1.4111...`, `4111...-7`, `10:415-555-0100`. Dates, versions, IPs and
/// decimals continue this way; the things we mask are delimited.
fn continues_numeric(hay: &[u8], s: usize, e: usize) -> bool {
    let joiner = |b: u8| matches!(b, b'.' | b'-' | b'/' | b':');
    let before = s >= 2 && joiner(hay[s - 1]) && hay[s - 2].is_ascii_digit();
    let after = e + 1 < hay.len() && joiner(hay[e]) && hay[e + 1].is_ascii_digit();
    before || after
}

fn card(hay: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    if continues_numeric(hay, s, e) {
        return None;
    }
    let mut digits = [0u8; 19];
    let mut ends = [0usize; 19];
    let mut n = 0;
    for (i, &b) in hay[s..e].iter().enumerate() {
        if b.is_ascii_digit() && n < 19 {
            digits[n] = b - b'0';
            ends[n] = s + i + 1;
            n += 1;
        }
    }
    // The regex is greedy: `4111 1111 1111 1111 12` matches as 18 digits.
    // Try shorter prefixes that end at a group boundary, longest first.
    (13..=n).rev().find_map(|len| {
        let end = ends[len - 1];
        let at_boundary = end == e || !hay[end].is_ascii_digit();
        let d = &digits[..len];
        (at_boundary && brand_ok(d) && luhn(d)).then_some((s, end))
    })
}

/// Luhn checksum over digit values (not ASCII).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Issuer prefixes and lengths. Ten percent of random digit strings pass
/// Luhn, so without this every tenth 16-digit id would be "a card".
fn brand_ok(d: &[u8]) -> bool {
    let prefix = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let len = d.len();
    let long = (16..=19).contains(&len);
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&p4) && len == 16,
        5 => ((51..=55).contains(&p2) && len == 16) || (matches!(p2, 50 | 56..=58) && len >= 13),
        3 => {
            (matches!(p2, 34 | 37) && len == 15)
                || ((3528..=3589).contains(&p4) && long)
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && len >= 14)
        }
        6 => {
            ((p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)) && long)
                || (matches!(p2, 62 | 63 | 67) && len >= 13)
        }
        _ => false,
    }
}

fn ssn_ok(m: &[u8]) -> bool {
    let num =
        |r: std::ops::Range<usize>| m[r].iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn phone_ok(m: &[u8]) -> bool {
    let digits = m.iter().filter(|b| b.is_ascii_digit()).count();
    if m.first() == Some(&b'+') {
        (8..=15).contains(&digits)
    } else {
        digits == 10 || (digits == 11 && m[0] == b'1')
    }
}

/// IBAN lengths by country (a common subset of the SWIFT registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VG", 24),
    (b"XK", 20),
];

fn iban(hay: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    let m = &hay[s..e];
    let want = IBAN_LENGTHS.iter().find(|(c, _)| c[..] == m[..2])?.1;
    // Cut after the `want`-th alphanumeric: the greedy regex may have run
    // on into a following upper-case word.
    let mut seen = 0;
    let cut = m.iter().position(|b| {
        seen += usize::from(b.is_ascii_alphanumeric());
        seen == want
    })?;
    let end = s + cut + 1;
    if end < e && hay[end] != b' ' {
        return None;
    }
    // mod-97 over the digits with the first four characters moved to the
    // end and letters as 10..35, computed piecewise to stay in a u32.
    let chars = || m[..=cut].iter().filter(|b| b.is_ascii_alphanumeric());
    let mut rem = 0u32;
    for &b in chars().skip(4).chain(chars().take(4)) {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then_some((s, end))
}

/// Top-level "domains" that are really file extensions (`logo@2x.png`) or
/// private names (`ec2-user@ip-10-0-0-1.ec2.internal`, a shell prompt).
const NOT_TLDS: &[&str] = &[
    "png",
    "jpg",
    "jpeg",
    "gif",
    "svg",
    "webp",
    "ico",
    "js",
    "mjs",
    "css",
    "map",
    "txt",
    "log",
    "json",
    "yaml",
    "yml",
    "toml",
    "lock",
    "html",
    "rs",
    "py",
    "go",
    "rb",
    "java",
    "internal",
    "local",
    "localdomain",
    "localhost",
    "lan",
    "home",
    "corp",
    "intranet",
    "svc",
    "cluster",
];

fn email_ok(m: &[u8]) -> bool {
    let tld = m.rsplit(|&b| b == b'.').next().unwrap_or_default();
    !NOT_TLDS
        .iter()
        .any(|t| t.as_bytes().eq_ignore_ascii_case(tld))
}

/// A standalone 40-character AWS secret looks like random base64: mixed
/// case and digits. Git SHAs (one-case hex) and paths fail this.
fn bare_secret_ok(m: &[u8]) -> bool {
    let count = |f: fn(&u8) -> bool| m.iter().filter(|b| f(b)).count();
    count(u8::is_ascii_uppercase) >= 2
        && count(u8::is_ascii_lowercase) >= 2
        && count(u8::is_ascii_digit) >= 1
        && count(|&b| b == b'/') <= 3
        && m[0] != b'/'
}
