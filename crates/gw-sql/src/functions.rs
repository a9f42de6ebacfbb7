//! The curated list of server functions whose call has an effect beyond
//! computing a value, and the token scan that finds their calls.
//!
//! The scan works on the tokenizer's output rather than on the AST so that a
//! call is found wherever the grammar allows an expression (select list,
//! `WHERE`, `FROM`, `VALUES`, defaults, `SET` values, `CALL` arguments, MySQL
//! versioned comments...) without having to enumerate every AST node that can
//! hold one. String literals are single tokens, so text inside a string is
//! never mistaken for a call.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

/// Lowercase names of functions with side effects, PostgreSQL and MySQL
/// together. Both dialects use the same list because a name that is harmless
/// in one server is at worst an unusual user function in the other, and
/// over-reporting a risk is the safe direction.
const SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    // PostgreSQL: other sessions and the server process.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_log_backend_memory_contexts",
    "pg_promote",
    "pg_switch_wal",
    "pg_switch_xlog",
    "pg_create_restore_point",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_slot_advance",
    "pg_copy_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_logical_emit_message",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru",
    "pg_stat_statements_reset",
    "pg_import_system_collations",
    "pg_notify",
    // PostgreSQL: session settings that change what later statements do.
    "set_config",
    // PostgreSQL: sequences (nextval is routine in inserts; setval rewinds).
    "setval",
    // PostgreSQL: locks and waiting (denial of service).
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
    // PostgreSQL: server files.
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_file_write",
    "pg_file_unlink",
    "pg_file_rename",
    "pg_file_sync",
    "pg_logdir_ls",
    // PostgreSQL: large objects (server-side import/export and writes).
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_from_bytea",
    "lo_put",
    "lo_create",
    "lo_creat",
    "lo_truncate",
    "lo_truncate64",
    "lowrite",
    // PostgreSQL: functions that run SQL text or open connections.
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_send_query",
    "dblink_open",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    // MySQL.
    "sleep",
    "benchmark",
    "load_file",
    "get_lock",
    "release_lock",
    "release_all_locks",
    "master_pos_wait",
    "source_pos_wait",
    "wait_for_executed_gtid_set",
    "wait_until_sql_thread_after_gtids",
    "sys_exec",
    "sys_eval",
];

/// Whether `name` (any case) is a known side-effect function.
pub(crate) fn is_side_effect_function(name: &str) -> bool {
    SIDE_EFFECT_FUNCTIONS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

/// Returns, in order of first appearance and without repeats, the lowercase
/// names of side-effect functions called in `tokens` (which must not contain
/// whitespace tokens).
///
/// A word is a call when the next token is `(`. The word is the last part of
/// a possibly qualified name (`pg_catalog.pg_sleep(1)`), which is what we
/// match on. Words right after `FUNCTION` or `PROCEDURE` name a routine being
/// created, altered or dropped rather than called, so they are skipped.
pub(crate) fn side_effect_calls(tokens: &[&Token]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(word) = token else { continue };
        if !matches!(tokens.get(i + 1), Some(Token::LParen)) {
            continue;
        }
        if !is_side_effect_function(&word.value) {
            continue;
        }
        if names_a_routine(tokens, i) {
            continue;
        }
        let name = word.value.to_ascii_lowercase();
        if !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// Whether the (possibly qualified) name ending at `index` follows
/// `FUNCTION` or `PROCEDURE`, i.e. is declared rather than called.
fn names_a_routine(tokens: &[&Token], index: usize) -> bool {
    let mut i = index;
    // Walk back over `schema.` prefixes.
    while i >= 2 {
        match (tokens.get(i - 1), tokens.get(i - 2)) {
            (Some(Token::Period), Some(Token::Word(_))) => i -= 2,
            _ => break,
        }
    }
    if i == 0 {
        return false;
    }
    matches!(
        tokens.get(i - 1),
        Some(Token::Word(w)) if matches!(w.keyword, Keyword::FUNCTION | Keyword::PROCEDURE)
    )
}
