//! The SSH data path, measured against its neighbours in one run: straight
//! to `sshd`, through a nested OpenSSH hop (an `ssh` on the hop that
//! decrypts and re-encrypts, like a classic bastion), and through gatewayd
//! (token login, exec guard, recording of every byte). Interleaved rounds,
//! medians reported.
//!
//! `cargo bench -p gw-e2e --bench ssh` (`BENCH_ROUNDS`, default 3;
//! `BENCH_MIB`, default 1024). It asserts nothing; numbers go into
//! BENCHMARKS.md.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use gw_e2e::bench::{gateway_pid, median, rss_kib};
use gw_e2e::sshd::Sshd;
use gw_e2e::{Gateway, require};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    if !require(&["ssh", "ssh-keygen", "/usr/sbin/sshd"]) {
        return;
    }
    let rounds: usize = env_num("BENCH_ROUNDS", 3);
    let mib: usize = env_num("BENCH_MIB", 1024);
    let sshd = Sshd::start();
    let ssh_port = gw_localpg::free_port().unwrap();
    let policy = format!(
        "resource \"web\" kind=\"ssh\" {{\n    address \"127.0.0.1:{}\"\n    credential user=\"root\" key=\"file:{}\"\n    host-key \"{}\"\n}}\ngrant \"bench\" {{\n    groups \"bench\"\n    resources \"web\"\n}}\nguard \"no-shutdown\" {{\n    protocols \"ssh\"\n    commands \"*shutdown*\"\n    action \"deny\"\n}}\n",
        sshd.port,
        sshd.key().display(),
        sshd.host_pub
    );
    let mut builder =
        Gateway::builder(&policy).config(&format!("listen ssh=\"127.0.0.1:{ssh_port}\""));
    // BENCH_WORKERS=1 runs the gateway on one runtime thread.
    if let Ok(w) = std::env::var("BENCH_WORKERS") {
        builder = builder.env("GATEWAYD_WORKER_THREADS", &w);
    }
    let gw = builder.start();
    let token = gw.token("bench@example.com", &["bench"]);
    let askpass = tempfile::tempdir().unwrap();
    let script = askpass.path().join("askpass.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$GW_TOKEN\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let common = [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=no",
    ];
    let key = sshd.key().display().to_string();
    let direct = |remote: &str| -> Command {
        let mut c = Command::new("ssh");
        c.args(common).args([
            "-i",
            &key,
            "-p",
            &sshd.port.to_string(),
            "root@127.0.0.1",
            remote,
        ]);
        c
    };
    let via_gateway = |remote: &str| -> Command {
        let mut c = Command::new("ssh");
        c.args(common)
            .args([
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "PubkeyAuthentication=no",
                "-p",
                &ssh_port.to_string(),
                "-l",
                "web",
                "127.0.0.1",
                remote,
            ])
            .env("SSH_ASKPASS", &script)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .env("GW_TOKEN", &token);
        c
    };
    // PERF.md's stream is zeros; BENCH_TEXT=1 streams text instead (what a
    // terminal mostly carries), which records more cheaply.
    let stream = if std::env::var_os("BENCH_TEXT").is_some() {
        format!("yes 'the quick brown fox jumps over the lazy dog' | head -c {mib}M")
    } else {
        format!("head -c {mib}M /dev/zero")
    };
    let nested_remote = format!(
        "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -i {key} -p {} root@127.0.0.1 '{stream}'",
        sshd.port
    );
    println!("SSH data path, {rounds} interleaved rounds, {mib} MiB per transfer, medians");
    // Memory per idle session, first, on a fresh gateway (after bulk
    // transfers the allocator keeps freed memory and hides the growth).
    let pid = gateway_pid(ssh_port).expect("the gateway's pid");
    let idle = 20;
    let before = rss_kib(pid);
    let mut children = Vec::new();
    for _ in 0..idle {
        children.push(
            via_gateway("sleep 600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_secs(8));
    let after = rss_kib(pid);
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!(
        "memory: {:.0} KiB per idle session ({idle} sessions: gatewayd RSS {before:.0} -> {after:.0} KiB)",
        (after - before) / idle as f64
    );

    let mut d = Vec::new();
    let mut n = Vec::new();
    let mut g = Vec::new();
    for round in 0..rounds {
        d.push(throughput(direct(&stream), mib));
        n.push(throughput(direct(&nested_remote), mib));
        g.push(throughput(via_gateway(&stream), mib));
        eprintln!(
            "round {}: direct {:.0} MiB/s, nested OpenSSH {:.0} MiB/s, gateway {:.0} MiB/s",
            round + 1,
            d[round],
            n[round],
            g[round]
        );
    }
    let (d, n, g) = (median(&d), median(&n), median(&g));
    println!(
        "throughput: direct {d:.0} MiB/s, nested OpenSSH hop {n:.0} MiB/s ({:.2}x direct), gateway {g:.0} MiB/s ({:.2}x direct, {:.2}x the nested hop)",
        n / d,
        g / d,
        g / n
    );

    // Session setup: sequential `ssh true`.
    let setups = 20;
    let mut ds = Vec::new();
    let mut gs = Vec::new();
    for _ in 0..rounds {
        ds.push(setup_rate(|| direct("true"), setups));
        gs.push(setup_rate(|| via_gateway("true"), setups));
    }
    let (ds, gs) = (median(&ds), median(&gs));
    println!(
        "session setup: direct {ds:.1}/s, gateway {gs:.1}/s ({:.2}x direct), sequential `ssh HOST true`",
        gs / ds
    );
}

fn throughput(mut cmd: Command, mib: usize) -> f64 {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let n = std::io::copy(&mut out, &mut std::io::sink()).unwrap();
    let status = child.wait().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "{cmd:?} failed");
    assert_eq!(n, (mib as u64) << 20, "{cmd:?} delivered {n} bytes");
    mib as f64 / secs
}

fn setup_rate(cmd: impl Fn() -> Command, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let status = cmd()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
