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

use gw_e2e::bench::{cpu_secs, gateway_pid, median, rss_kib};
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
    // BENCH_GATEWAY_ENV="NAME=VALUE" sets one variable for the gateway only
    // (e.g. GLIBC_TUNABLES, to try allocator settings).
    if let Ok(kv) = std::env::var("BENCH_GATEWAY_ENV")
        && let Some((k, v)) = kv.split_once('=')
    {
        builder = builder.env(k, v);
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
    let direct_with = |remote: &str, options: &[&str]| -> Command {
        let mut c = Command::new("ssh");
        c.args(common).args(options).args([
            "-i",
            &key,
            "-p",
            &sshd.port.to_string(),
            "root@127.0.0.1",
            remote,
        ]);
        c
    };
    // The cipher clients end up with through the gateway (it offers only
    // AES-GCM on CPUs with AES instructions; OpenSSH then picks this one),
    // forced on a direct connection: the same client work, for comparison.
    let direct = |remote: &str| direct_with(remote, &[]);
    let direct_gcm = |remote: &str| direct_with(remote, &["-c", "aes128-gcm@openssh.com"]);
    // `ssh` or `scp` logging in to the gateway with the token.
    let to_gateway = |program: &str| -> Command {
        let mut c = Command::new(program);
        c.args(common)
            .args([
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "PubkeyAuthentication=no",
            ])
            .env("SSH_ASKPASS", &script)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .env("GW_TOKEN", &token);
        c
    };
    let via_gateway = |remote: &str| -> Command {
        let mut c = to_gateway("ssh");
        c.args([
            "-p",
            &ssh_port.to_string(),
            "-l",
            "web",
            "127.0.0.1",
            remote,
        ]);
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

    let procs = Procs {
        sshd: sshd.pid(),
        gateway: pid,
    };
    // BENCH_ONLY=direct|direct-gcm|nested|gateway streams through one path
    // only (to profile it: `perf record -a` while this runs).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        for round in 0..rounds {
            let cmd = match only.as_str() {
                "direct" => direct(&stream),
                "direct-gcm" => direct_gcm(&stream),
                "nested" => direct(&nested_remote),
                _ => via_gateway(&stream),
            };
            let r = throughput(cmd, mib, &procs);
            eprintln!("round {}: {only} {}", round + 1, r.line());
        }
        return;
    }
    let paths = [
        "direct",
        "direct, client forced to aes128-gcm",
        "nested OpenSSH hop",
        "gateway",
    ];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); paths.len()];
    for round in 0..rounds {
        for (i, name) in paths.iter().enumerate() {
            let cmd = match i {
                0 => direct(&stream),
                1 => direct_gcm(&stream),
                2 => direct(&nested_remote),
                _ => via_gateway(&stream),
            };
            let r = throughput(cmd, mib, &procs);
            eprintln!("round {}: {name:<36} {}", round + 1, r.line());
            runs[i].push(r);
        }
    }
    let med: Vec<Run> = runs.iter().map(|r| Run::median(r)).collect();
    println!("medians (CPU seconds per GiB: client ssh / sshd and its children / gatewayd):");
    for (name, r) in paths.iter().zip(&med) {
        println!("  {name:<36} {}", r.line());
    }
    let (d, dg, n, g) = (&med[0], &med[1], &med[2], &med[3]);
    println!(
        "throughput: gateway {:.2}x direct, {:.2}x the nested hop (hop {:.2}x direct); {:.2}x direct with the same client cipher",
        g.mibps / d.mibps,
        g.mibps / n.mibps,
        n.mibps / d.mibps,
        g.mibps / dg.mibps
    );
    println!(
        "CPU per GiB, all processes: direct {:.2} s, hop {:.2} s, gateway {:.2} s ({:.2}x direct)",
        d.total(),
        n.total(),
        g.total(),
        g.total() / d.total()
    );

    // scp (SFTP mode, OpenSSH's default) of a 1 GiB file, downloaded:
    // the gateway follows every sftp packet to record the file operation.
    let file = sshd.dir.path().join("big.bin");
    std::fs::File::create(&file)
        .unwrap()
        .set_len((mib as u64) << 20)
        .unwrap();
    let remote = format!("127.0.0.1:{}", file.display());
    let scp_direct = || {
        let mut c = Command::new("scp");
        c.args(common).args([
            "-i",
            &key,
            "-P",
            &sshd.port.to_string(),
            &format!("root@{remote}"),
            "/dev/null",
        ]);
        c
    };
    let scp_gateway = || {
        let mut c = to_gateway("scp");
        c.args([
            "-P",
            &ssh_port.to_string(),
            &format!("web@{remote}"),
            "/dev/null",
        ]);
        c
    };
    let mut sd = Vec::new();
    let mut sg = Vec::new();
    for round in 0..rounds {
        sd.push(copy(scp_direct(), mib, &procs));
        sg.push(copy(scp_gateway(), mib, &procs));
        eprintln!(
            "round {}: scp download direct {} / gateway {}",
            round + 1,
            sd[round].line(),
            sg[round].line()
        );
    }
    let (sd, sg) = (Run::median(&sd), Run::median(&sg));
    println!(
        "scp download of {mib} MiB: direct {}; gateway {} ({:.2}x direct)",
        sd.line(),
        sg.line(),
        sg.mibps / sd.mibps
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

/// The processes whose CPU time is counted.
struct Procs {
    sshd: u32,
    gateway: u32,
}

/// One transfer: throughput, and CPU seconds per GiB by process.
#[derive(Clone, Copy)]
struct Run {
    mibps: f64,
    client: f64,
    target: f64,
    gateway: f64,
}

impl Run {
    fn total(&self) -> f64 {
        self.client + self.target + self.gateway
    }

    fn line(&self) -> String {
        format!(
            "{:>5.0} MiB/s  CPU s/GiB {:.2} / {:.2} / {:.2} = {:.2}",
            self.mibps,
            self.client,
            self.target,
            self.gateway,
            self.total()
        )
    }

    /// Field by field (each the median of its own).
    fn median(runs: &[Run]) -> Run {
        let m = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        Run {
            mibps: m(|r| r.mibps),
            client: m(|r| r.client),
            target: m(|r| r.target),
            gateway: m(|r| r.gateway),
        }
    }
}

/// Like [`throughput`], for a command that writes the bytes itself (scp).
fn copy(cmd: Command, mib: usize, procs: &Procs) -> Run {
    measure(cmd, mib, procs, false)
}

fn throughput(cmd: Command, mib: usize, procs: &Procs) -> Run {
    measure(cmd, mib, procs, true)
}

fn measure(mut cmd: Command, mib: usize, procs: &Procs, stdout: bool) -> Run {
    let me = std::process::id();
    let (_, client0) = cpu_secs(me);
    let (_, target0) = cpu_secs(procs.sshd);
    let (gateway0, _) = cpu_secs(procs.gateway);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    // Read like `dd bs=1M`: a small buffer would cost this reader more CPU
    // than it measures.
    let mut buf = vec![0u8; 1 << 20];
    let mut n = if stdout { 0 } else { (mib as u64) << 20 };
    loop {
        match std::io::Read::read(&mut out, &mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading {cmd:?}: {e}"),
        }
    }
    let status = child.wait().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "{cmd:?} failed");
    assert_eq!(n, (mib as u64) << 20, "{cmd:?} delivered {n} bytes");
    // sshd reaps its session process (and with it the session's children)
    // a moment after the client is gone.
    std::thread::sleep(Duration::from_millis(300));
    let gib = mib as f64 / 1024.0;
    let (_, client1) = cpu_secs(me);
    let (_, target1) = cpu_secs(procs.sshd);
    let (gateway1, _) = cpu_secs(procs.gateway);
    Run {
        mibps: mib as f64 / secs,
        client: (client1 - client0) / gib,
        target: (target1 - target0) / gib,
        gateway: (gateway1 - gateway0) / gib,
    }
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
