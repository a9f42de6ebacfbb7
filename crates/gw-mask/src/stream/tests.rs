//! Stream masking: any chunking gives the whole-text result (every split
//! point, and random chunkings), escape sequences, UTF-8, long regions.

use super::*;
use crate::{fuzz_mask, fuzz_masker, mask_chunked, mask_whole};

/// Text with every kind of secret, colours, and non-ASCII characters.
const SAMPLE: &str = concat!(
    "\x1b[1;32muser@web-01\x1b[0m:~$ cat notes.txt\r\n",
    "card: \x1b[31m4111\x1b[0m 1111 1111 1111 — paid ✓\r\n",
    "mail: bob.smith@example.com, ssn 123-45-6789, tel +44 20 7946 0958\r\n",
    "iban DE89 3704 0044 0532 0130 00; aws AKIAIOSFODNN7EXAMPLE\r\n",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\r\n",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\r\n",
    "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\r\n-----END OPENSSH PRIVATE KEY-----\r\n",
    "GITHUB_TOKEN=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 TKT-2024-abc\r\n",
    "\x1b[38;5;208mdone\x1b[0m in 12.5s at 2024-01-15 10:00:00 from 192.168.1.10 日本語\r\n",
);

fn whole(text: &[u8]) -> Vec<u8> {
    mask_whole(fuzz_masker(), text).unwrap()
}

#[test]
fn sample_is_masked() {
    let out = String::from_utf8(whole(SAMPLE.as_bytes())).unwrap();
    for secret in [
        "4111",
        "bob.smith",
        "123-45-6789",
        "7946",
        "3704",
        "AKIA",
        "wJalr",
        "eyJ",
        "b3Blbn",
        "ghp_",
        "TKT-",
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    assert!(out.contains("user@web-01"), "{out}");
    assert!(out.contains("192.168.1.10 日本語"), "{out}");
}

#[test]
fn every_split_point_gives_the_whole_result() {
    let text = SAMPLE.as_bytes();
    let expected = whole(text);
    let masker = fuzz_masker();
    for i in 0..=text.len() {
        let mut s = masker.stream();
        let mut out = Vec::new();
        s.push(&text[..i], &mut out).unwrap();
        s.push(&text[i..], &mut out).unwrap();
        s.finish(&mut out).unwrap();
        assert_eq!(out, expected, "split at {i}");
    }
}

#[test]
fn random_chunkings_give_the_whole_result() {
    let text = SAMPLE.repeat(3);
    let expected = whole(text.as_bytes());
    for seed in 1..=200u64 {
        for max in [2, 7, 64, 500] {
            let got = mask_chunked(fuzz_masker(), text.as_bytes(), seed, max).unwrap();
            assert_eq!(got, expected, "seed {seed}, chunks up to {max}");
        }
    }
}

#[test]
fn byte_at_a_time() {
    let text = SAMPLE.as_bytes();
    let mut s = fuzz_masker().stream();
    let mut out = Vec::new();
    for b in text {
        s.push(std::slice::from_ref(b), &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    assert_eq!(out, whole(text));
}

#[track_caller]
fn check(input: &str, expected: &str) {
    let got = String::from_utf8(whole(input.as_bytes())).unwrap();
    assert_eq!(got, expected, "input: {input:?}");
}

#[test]
fn sgr_sequences_between_digit_groups() {
    check(
        "\x1b[1;31m4111\x1b[0m-1111-\x1b[32m1111-1111\x1b[0m done",
        "\x1b[1;31m[REDACTED:credit-card#517f74e24b]\x1b[0m\x1b[32m\x1b[0m done",
    );
    check(
        "4\x1b[0m1\x1b[0m1\x1b[0m1111111111111 x",
        "[REDACTED:credit-card#517f74e24b]\x1b[0m\x1b[0m\x1b[0m x",
    );
    check(
        "\x1b[32mbob@\x1b[1mexample.com\x1b[0m",
        "\x1b[32m[REDACTED:email]\x1b[1m\x1b[0m",
    );
}

#[test]
fn other_escapes_are_text() {
    // A cursor move is CSI and is stripped like colours; a two-byte escape
    // is not CSI and splits the number (documented limit).
    check(
        "4111\x1b[2C111111111111",
        "[REDACTED:credit-card#517f74e24b]\x1b[2C",
    );
    check("4111\x1b7111111111111", "4111\x1b7111111111111");
    // An ESC that never completes a sequence stays in the output.
    check("a\x1b[12", "a\x1b[12");
    check("a\x1b[12\x01b", "a\x1b[12\x01b");
}

#[test]
fn pieces_never_split_characters_or_escapes() {
    let text = SAMPLE.repeat(2);
    for seed in 1..=50u64 {
        let mut s = fuzz_masker().stream();
        let mut rng = seed;
        let mut rest = text.as_bytes();
        let check_piece = |piece: &[u8]| {
            assert!(
                std::str::from_utf8(piece).is_ok(),
                "piece splits a character"
            );
            if let Some(esc) = memchr::memrchr(0x1b, piece) {
                let tail = &piece[esc..];
                let complete = tail.len() >= 3 && (0x40..=0x7E).contains(tail.last().unwrap());
                let closed = tail[1..]
                    .iter()
                    .any(|b| (0x40..=0x7E).contains(b) && *b != b'[');
                assert!(complete || closed, "piece ends inside an escape: {tail:?}");
            }
        };
        while !rest.is_empty() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let n = (rng as usize % 40).min(rest.len());
            let mut piece = Vec::new();
            s.push(&rest[..n], &mut piece).unwrap();
            check_piece(&piece);
            rest = &rest[n..];
        }
        let mut piece = Vec::new();
        s.finish(&mut piece).unwrap();
        check_piece(&piece);
    }
}

#[test]
fn plain_text_is_held_back_at_most_a_window() {
    let masker = fuzz_masker();
    let mut s = masker.stream();
    let mut out = Vec::new();
    let line = b"the quick brown fox jumps over the lazy dog 0123456789\n";
    for _ in 0..200 {
        s.push(line, &mut out).unwrap();
        assert!(s.pending() <= masker.window(), "{}", s.pending());
    }
    s.finish(&mut out).unwrap();
    assert_eq!(s.pending(), 0);
    assert_eq!(out.len(), line.len() * 200);
}

#[test]
fn long_tokens_are_masked_in_pieces() {
    let mut text = b"x ghp_".to_vec();
    text.extend((0..40_000).map(|i| b"aZ09"[i % 4]));
    text.extend_from_slice(b" y");
    let out = whole(&text);
    let expected = format!(
        "x {}[REDACTED:api-token] y",
        "[REDACTED:api-token]".repeat(2)
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(
        mask_chunked(fuzz_masker(), &text, 9, 3000).unwrap(),
        whole(&text)
    );
}

#[test]
fn unterminated_key_block_fails_and_poisons() {
    let mut s = fuzz_masker().stream();
    let mut out = Vec::new();
    s.push(b"ok\n-----BEGIN RSA PRIVATE KEY-----\n", &mut out)
        .unwrap();
    let line = [b'A'; 1000];
    let mut failed = None;
    for _ in 0..100 {
        if let Err(e) = s.push(&line, &mut out) {
            failed = Some(e);
            break;
        }
    }
    assert_eq!(
        failed,
        Some(MaskError::KeyBlockTooLong {
            limit: crate::BLOCK_CAP
        })
    );
    assert_eq!(out, b"ok\n", "nothing of the block was emitted");
    assert_eq!(s.push(b"more", &mut out), Err(MaskError::Poisoned));
    assert_eq!(s.finish(&mut out), Err(MaskError::Poisoned));
}

#[test]
fn key_block_across_many_chunks() {
    let mut text = b"a\n-----BEGIN PRIVATE KEY-----\n".to_vec();
    for _ in 0..50 {
        text.extend_from_slice(b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ\n");
    }
    text.extend_from_slice(b"-----END PRIVATE KEY-----\nb 4111111111111111\n");
    let out = whole(&text);
    assert_eq!(
        out,
        b"a\n[REDACTED:private-key]\nb [REDACTED:credit-card#517f74e24b]\n"
    );
    for seed in 1..=20 {
        assert_eq!(mask_chunked(fuzz_masker(), &text, seed, 100).unwrap(), out);
    }
}

#[test]
fn finish_resets_the_stream() {
    let mut s = fuzz_masker().stream();
    let mut out = Vec::new();
    s.push(b"x 4111 1111", &mut out).unwrap();
    s.finish(&mut out).unwrap();
    s.push(b" 1111 1111", &mut out).unwrap();
    s.finish(&mut out).unwrap();
    assert_eq!(out, b"x 4111 1111 1111 1111");
}

#[test]
fn column_only_maskers_pass_streams_through() {
    use gw_policy::model::{Mask, MaskStyle};
    let m = Mask {
        name: "c".to_owned(),
        resources: Default::default(),
        except: Default::default(),
        detectors: Vec::new(),
        patterns: Vec::new(),
        columns: vec![gw_policy::glob::Glob::new("ssn")],
        fields: Vec::new(),
        style: MaskStyle::Full,
        block_binary: true,
        origin: Default::default(),
    };
    let masker = Masker::from_masks(&[&m]);
    let mut s = masker.stream();
    let mut out = Vec::new();
    s.push(b"4111111111111111", &mut out).unwrap();
    assert_eq!(out, b"4111111111111111", "nothing held back");
}

/// Random text over an alphabet that makes near-secrets likely, with real
/// secrets spliced in.
fn random_text(seed: u64, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789 -.+@()/:=_abcXYZ\x1b[m;\n\xc3\xa9eyJAKIA";
    const SECRETS: &[&str] = &[
        "4111 1111 1111 1111",
        "bob@example.com",
        "123-45-6789",
        "+14155552671",
        "DE89370400440532013000",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "\x1b[31m",
    ];
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let r = next();
        if r % 16 == 0 {
            out.extend_from_slice(SECRETS[(r >> 8) as usize % SECRETS.len()].as_bytes());
        } else {
            out.push(ALPHABET[(r >> 8) as usize % ALPHABET.len()]);
        }
    }
    out
}

#[test]
fn random_texts_through_the_fuzz_entry_point() {
    for seed in 1..=300u64 {
        fuzz_mask(&random_text(seed, 400));
    }
    fuzz_mask(b"");
    fuzz_mask(&[0x1b; 10_000]);
    fuzz_mask(&[b'4'; 10_000]);
}

/// Pushes each part and flushes after it, as an idle timer would.
fn flushed(parts: &[&str]) -> Vec<String> {
    let mut s = fuzz_masker().stream();
    parts
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            s.push(p.as_bytes(), &mut out).unwrap();
            s.flush(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        })
        .collect()
}

#[test]
fn flush_emits_a_waiting_prompt() {
    assert_eq!(
        flushed(&["total 0\r\nann@web-01:~$ "]),
        ["total 0\r\nann@web-01:~$ "]
    );
    assert_eq!(
        flushed(&["card 4111111111111111\r\n\x1b[32m$\x1b[0m "]),
        ["card [REDACTED:credit-card#517f74e24b]\r\n\x1b[32m$\x1b[0m "]
    );
}

#[test]
fn flush_holds_what_could_still_become_a_secret() {
    assert_eq!(
        flushed(&["card 4111 1111", " 1111 1111\r\n$ "]),
        ["card ", "[REDACTED:credit-card#517f74e24b]\r\n$ "]
    );
    assert_eq!(
        flushed(&["mail bob@exam", "ple.com\r\n$ "]),
        ["mail ", "[REDACTED:email]\r\n$ "]
    );
    assert_eq!(
        flushed(&[
            "-----BEGIN PRIVATE KEY-----\nMIIE",
            "vQ\n-----END PRIVATE KEY-----\n$ "
        ]),
        ["", "[REDACTED:private-key]\n$ "]
    );
    assert_eq!(
        flushed(&["tok ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345", "6789 ok\n$ "]),
        ["tok ", "[REDACTED:api-token] ok\n$ "]
    );
}

#[test]
fn flushing_anywhere_never_reveals_a_secret() {
    for seed in 1..=100u64 {
        let mut s = fuzz_masker().stream();
        let mut out = Vec::new();
        let mut rng = seed;
        let mut rest = SAMPLE.as_bytes();
        while !rest.is_empty() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let n = (rng as usize % 30).min(rest.len());
            s.push(&rest[..n], &mut out).unwrap();
            if rng % 3 == 0 {
                s.flush(&mut out).unwrap();
            }
            rest = &rest[n..];
        }
        s.finish(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        for secret in [
            "4111",
            "bob.smith",
            "123-45-6789",
            "7946",
            "3704",
            "AKIA",
            "wJalr",
            "eyJ",
            "b3Blbn",
            "ghp_",
            "TKT-",
        ] {
            assert!(
                !out.contains(secret),
                "seed {seed}: {secret} leaked:\n{out}"
            );
        }
    }
}
