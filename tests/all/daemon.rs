//! The daemon: the container verbs as its clients, state that outlives it,
//! restart policies, many clients at once, and its Docker Engine API spoken
//! directly over the Unix socket.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{HANG, Root, api, connect, poll};

/// Waits for a child this test started, killing it (and failing) if it
/// hangs.
#[track_caller]
fn wait_child(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `ps -a` row of the container named `name` (NAMES is the last column).
#[track_caller]
fn ps_row(root: &Root, name: &str) -> Option<String> {
    let ps = root.wrun(&["ps", "-a"]);
    ps.ok()
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().last() == Some(name))
        .map(str::to_string)
}

/// Polls until the container's `State.Status` is `status`; returns the
/// inspect JSON.
#[track_caller]
fn wait_status(root: &Root, name: &str, status: &str) -> Value {
    poll(&format!("{name} to be {status}"), || {
        let v = root.container(name);
        (v["State"]["Status"] == status).then_some(v)
    })
}

/// The full IDs of every container, sorted.
fn all_ids(root: &Root) -> Vec<String> {
    let mut ids: Vec<String> = root
        .wrun(&["ps", "-a", "-q", "--no-trunc"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Attaches to a container's stdin through the hijacked `attach` endpoint,
/// as `docker attach` does; what is written to the stream reaches the guest.
fn attach_stdin(root: &Root, name: &str) -> UnixStream {
    let mut s = connect(root);
    write!(
        s,
        "POST /v1.43/containers/{name}/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: wrun\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("send attach");
    // Read the answer's head byte by byte: the raw stream follows it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).expect("read attach answer"),
            1,
            "{head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// The walk-through: run detached, list, inspect, logs, exec, top, stop,
/// rm — each as Docker shows it.
/// `run` asks for the next exit, then starts: a program that is done at
/// once must still end the command (the daemon takes the waiter's state
/// before it answers, not in a task that may run after the exit; a CI run
/// once hung on a foreground `echo` that had exited).
#[test]
fn foreground_runs_of_instant_programs_always_return() {
    let root = Root::new();
    root.busybox();
    for i in 0..60 {
        let mut child = root
            .cmd(&["run", "--rm", "busybox", "echo", &format!("run-{i}")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn wrun run");
        let status = wait_child(&mut child, &format!("foreground run {i}"));
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        assert!(
            status.success() && out.trim() == format!("run-{i}"),
            "{status} {out:?}"
        );
    }
}

#[test]
fn walk_through_of_a_detached_container() {
    let root = Root::new();
    root.busybox();
    let id = root
        .wrun(&[
            "run",
            "-d",
            "--name",
            "walk",
            "busybox",
            "sh",
            "-c",
            "echo started; sleep 600",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let short = &id[..12];

    let ps = root.wrun(&["ps"]);
    let lines: Vec<&str> = ps.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{}", ps.stdout);
    assert!(lines[0].starts_with("CONTAINER ID"), "{}", lines[0]);
    assert!(lines[1].starts_with(short), "{}", lines[1]);
    assert!(lines[1].contains("   Up "), "{}", lines[1]);
    assert!(lines[1].ends_with("   walk"), "{}", lines[1]);

    let c = root.container("walk");
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/walk");
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["Config"]["Hostname"], short);

    let logs = poll("the container's first output", || {
        let r = root.wrun(&["logs", "walk"]);
        (!r.ok().is_empty()).then_some(r.stdout)
    });
    assert_eq!(logs, "started\n");

    // A second container, whose processes must stay out of the first's.
    root.wrun(&["run", "-d", "--name", "other", "busybox", "sleep", "600"])
        .ok();
    let ps = root.wrun(&["exec", "walk", "ps", "aux"]);
    let lines: Vec<&str> = ps.ok().lines().collect();
    assert_eq!(lines.len(), 3, "header, PID 1 and the exec: {lines:?}");
    assert!(lines[0].contains("PID") && lines[0].contains("COMMAND"));
    let pid = |l: &str| l.split_whitespace().next().unwrap_or("").to_string();
    assert_eq!(pid(lines[1]), "1", "{lines:?}");
    assert!(
        lines[1].ends_with("sh -c echo started; sleep 600"),
        "{lines:?}"
    );
    assert_ne!(pid(lines[2]), "1", "{lines:?}");
    assert!(lines[2].ends_with(" ps aux"), "{lines:?}");

    assert_eq!(
        root.wrun(&["exec", "walk", "hostname"]).ok(),
        format!("{short}\n")
    );

    let top = root.wrun(&["top", "walk"]);
    let lines: Vec<&str> = top.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{}", top.stdout);
    assert!(lines[0].starts_with("PID"), "{}", top.stdout);
    assert!(lines[1].starts_with("1 "), "{}", top.stdout);
    assert!(
        lines[1].ends_with("sh -c echo started; sleep 600"),
        "{}",
        top.stdout
    );

    assert_eq!(root.wrun(&["stop", "walk"]).ok(), "walk\n");
    let row = ps_row(&root, "walk").expect("walk is listed");
    assert!(row.contains("Exited (137)"), "{row}");
    assert_eq!(root.container("walk")["State"]["Running"], false);
    // Exec needs a running container.
    assert_ne!(root.wrun(&["exec", "walk", "true"]).code, 0);

    assert_eq!(root.wrun(&["rm", "walk"]).ok(), "walk\n");
    assert_eq!(ps_row(&root, "walk"), None);
    assert!(ps_row(&root, "other").is_some());
    root.wrun(&["inspect", "walk"])
        .fails(1, "No such object: walk");
    root.wrun(&["rm", "-f", "other"]).ok();
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");
}

/// `logs -f` prints what is there, then what the guest writes next, and
/// ends when the container exits.
#[test]
fn logs_follow_a_running_container_until_it_exits() {
    let root = Root::new();
    root.busybox();
    // A shell reading commands from its stdin: the test decides when it
    // writes, through an attached stdin.
    root.wrun(&["run", "-d", "-i", "--name", "f", "busybox", "sh"])
        .ok();
    let mut stdin = attach_stdin(&root, "f");
    stdin.write_all(b"echo first\n").expect("write");
    poll("the first line in the log", || {
        root.wrun(&["logs", "f"])
            .ok()
            .contains("first")
            .then_some(())
    });

    let mut follower = root
        .cmd(&["logs", "-f", "f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let out = follower.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.expect("read")).is_err() {
                break;
            }
        }
    });
    assert_eq!(lines.recv_timeout(HANG).expect("the old line"), "first");
    assert!(
        follower.try_wait().expect("try_wait").is_none(),
        "logs -f must keep following a running container"
    );
    stdin.write_all(b"echo second\n").expect("write");
    assert_eq!(lines.recv_timeout(HANG).expect("the new line"), "second");
    stdin.write_all(b"exit 0\n").expect("write");
    assert_eq!(
        lines.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected),
        "logs -f ends with the container, after nothing more"
    );
    assert!(wait_child(&mut follower, "logs -f").success());
    assert_eq!(wait_status(&root, "f", "exited")["State"]["ExitCode"], 0);
}

/// `logs --tail N` keeps the last lines; `logs -t` stamps each with the
/// time it was written, between the container's start and end.
#[test]
fn logs_tail_and_timestamps() {
    let root = Root::new();
    root.busybox();
    root.wrun(&[
        "run",
        "--name",
        "l",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two; echo three",
    ])
    .ok();
    assert_eq!(root.wrun(&["logs", "l"]).ok(), "one\ntwo\nthree\n");
    assert_eq!(root.wrun(&["logs", "--tail", "1", "l"]).ok(), "three\n");
    assert_eq!(root.wrun(&["logs", "-n", "2", "l"]).ok(), "two\nthree\n");
    assert_eq!(root.wrun(&["logs", "--tail", "0", "l"]).ok(), "");

    let state = root.container("l")["State"].clone();
    let started = state["StartedAt"].as_str().expect("StartedAt").to_string();
    let finished = state["FinishedAt"]
        .as_str()
        .expect("FinishedAt")
        .to_string();
    let stamped = root.wrun(&["logs", "-t", "l"]);
    let lines: Vec<&str> = stamped.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", stamped.stdout);
    for (line, text) in lines.iter().zip(["one", "two", "three"]) {
        let (time, rest) = line.split_once(' ').expect("a timestamp, then the line");
        assert_eq!(rest, text, "{line}");
        // RFC 3339 in UTC with nanoseconds, as inspect's times are written,
        // so that the strings compare as the times do.
        assert_eq!(time.len(), "2006-01-02T15:04:05.000000000Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert!(
            started.as_str() <= time && time <= finished.as_str(),
            "{time} is not within {started} .. {finished}"
        );
    }
    // Unknown containers are refused.
    root.wrun(&["logs", "nosuch"])
        .fails(125, "No such container: nosuch");
}

/// `exec -i` gives the program this command's stdin; the shell reads
/// commands from it, and its exit status is exec's.
#[test]
fn exec_interactive_shell_reads_stdin_and_returns_its_status() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "-d", "--name", "c", "busybox", "sleep", "600"])
        .ok();
    let r = root.wrun_with_input(&["exec", "-i", "c", "sh"], "echo hi\nexit 4\n");
    assert_eq!((r.code, r.stdout.as_str()), (4, "hi\n"), "{r:?}");

    // Output goes to the right stream; end of input ends the shell with
    // the last command's status.
    let r = root.wrun_with_input(
        &["exec", "-i", "c", "sh"],
        "echo out\necho err >&2\nfalse\n",
    );
    assert_eq!((r.code, r.stdout.as_str()), (1, "out\n"), "{r:?}");
    assert!(r.stderr.contains("err\n"), "{r:?}");

    // Without -i the program's stdin is empty.
    let r = root.wrun_with_input(&["exec", "c", "cat"], "not passed\n");
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    let r = root.wrun_with_input(&["exec", "-i", "c", "cat"], "line 1\nline 2\n");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "line 1\nline 2\n"),
        "{r:?}"
    );

    // -e and -w reach the program.
    let r = root.wrun(&[
        "exec",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "c",
        "sh",
        "-c",
        "echo $GREETING; pwd",
    ]);
    assert_eq!(r.ok(), "hi\n/tmp\n");
    // A missing program is Docker's 127.
    let r = root.wrun(&["exec", "c", "nosuchprog"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("nosuchprog"), "{r:?}");
    // The container is untouched by its execs.
    assert_eq!(root.container("c")["State"]["Running"], true);
}

/// The containers whose survival of a daemon restart is checked: `plain`
/// (running, after printing "plain"), `three` (exited with 3) and `always`
/// (`--restart always`, running after printing "before"). Their IDs.
fn three_containers(root: &Root) -> Vec<String> {
    root.busybox();
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "plain",
        "busybox",
        "sh",
        "-c",
        "echo plain; sleep 600",
    ])
    .ok();
    let three = root.wrun(&["run", "--name", "three", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(three.code, 3, "{three:?}");
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo before; sleep 600",
    ])
    .ok();
    poll("the always container's output", || {
        (root.wrun(&["logs", "always"]).ok() == "before\n").then_some(())
    });
    let ids = all_ids(root);
    assert_eq!(ids.len(), 3);
    ids
}

/// After the daemon that ran [`three_containers`] is gone, the next one
/// lists them all: `plain` ended by the stop (137), `three` as it was, and
/// `always` running again, its log from before kept and added to.
#[track_caller]
fn three_containers_survived(root: &Root, ids: &[String]) {
    assert_eq!(all_ids(root), ids, "no container is lost");
    let plain = ps_row(root, "plain").expect("plain is listed");
    assert!(plain.contains("Exited (137)"), "{plain}");
    let three = ps_row(root, "three").expect("three is listed");
    assert!(three.contains("Exited (3)"), "{three}");
    wait_status(root, "always", "running");
    poll("the restarted run's output", || {
        (root.wrun(&["logs", "always"]).ok() == "before\nbefore\n").then_some(())
    });
}

/// Three containers (running, exited with 3, running with
/// `--restart always`) survive a `kill -9` of the daemon: the next command
/// starts a new one, which finds them all, the plain one ended by the
/// crash, the `always` one running again with its earlier logs.
#[test]
fn containers_survive_a_daemon_crash() {
    let root = Root::new();
    let ids = three_containers(&root);
    let old_pid = std::fs::read_to_string(root.path().join("daemon.lock")).expect("lock");

    root.kill_daemon_hard();

    // Any command brings a daemon back.
    three_containers_survived(&root, &ids);
    let new_pid = std::fs::read_to_string(root.path().join("daemon.lock")).expect("lock");
    assert_ne!(old_pid, new_pid, "a new daemon answers");
    let p = root.container("plain");
    assert_eq!(p["State"]["Running"], false);
    assert_eq!(p["State"]["ExitCode"], 137);
    let always = ps_row(&root, "always").expect("always is listed");
    assert!(always.contains("   Up "), "{always}");
    assert_eq!(root.wrun(&["logs", "plain"]).ok(), "plain\n");
}

/// `wrun daemon stop` stops the containers and saves them; the next
/// command's daemon lists them all, restarting the `always` one.
#[test]
fn containers_survive_a_graceful_daemon_stop() {
    let root = Root::new();
    let ids = three_containers(&root);

    root.wrun(&["daemon", "stop"]).ok();
    assert!(
        !root.path().join("wrun.sock").exists(),
        "the daemon removes its socket"
    );
    root.wrun(&["--no-start", "ps"])
        .fails(125, "cannot connect to the wrun daemon");

    three_containers_survived(&root, &ids);
    root.wrun(&["daemon", "stop"]).ok();
    // Stopping a daemon that is not running is not an error.
    let again = root.wrun(&["daemon", "stop"]);
    again.ok();
    assert!(
        again.stderr.contains("no wrun daemon is running"),
        "{again:?}"
    );
}

/// `on-failure:2` runs a failing program three times in all, then leaves
/// it exited with its code; every run's output is in the log.
#[test]
fn restart_on_failure_stops_after_the_maximum() {
    let root = Root::new();
    root.busybox();
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "of",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo x; exit 1",
    ])
    .ok();
    let v = wait_status(&root, "of", "exited");
    assert_eq!(v["RestartCount"], 2, "{v:#}");
    assert_eq!(v["State"]["ExitCode"], 1);
    assert_eq!(v["State"]["Restarting"], false);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(root.wrun(&["logs", "of"]).ok(), "x\nx\nx\n");
    let row = ps_row(&root, "of").expect("listed");
    assert!(row.contains("Exited (1)"), "{row}");

    // A success is not a failure: no restart.
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox",
        "echo",
        "once",
    ])
    .ok();
    let v = wait_status(&root, "ok", "exited");
    assert_eq!(v["RestartCount"], 0, "{v:#}");
    assert_eq!(v["State"]["ExitCode"], 0);
    assert_eq!(root.wrun(&["logs", "ok"]).ok(), "once\n");
}

/// `always` restarts a program that keeps failing, counting each restart,
/// until `stop`, after which it stays stopped.
#[test]
fn restart_always_until_stopped() {
    let root = Root::new();
    root.busybox();
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "al",
        "--restart",
        "always",
        "busybox",
        "false",
    ])
    .ok();
    let v = poll("three restarts", || {
        let v = root.container("al");
        (v["RestartCount"].as_u64().expect("RestartCount") >= 3).then_some(v)
    });
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "always");
    assert!(
        matches!(
            v["State"]["Status"].as_str(),
            Some("running" | "restarting")
        ),
        "{v:#}"
    );
    // A restarting container counts as running for `ps`.
    assert!(ps_row(&root, "al").is_some());
    assert_eq!(root.wrun(&["ps", "-q"]).ok().lines().count(), 1);

    assert_eq!(root.wrun(&["stop", "al"]).ok(), "al\n");
    let v = root.container("al");
    assert_eq!(v["State"]["Status"], "exited", "{v:#}");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["Restarting"], false);
    let count = v["RestartCount"].clone();
    // Longer than the backoff at this count: a restart would show.
    std::thread::sleep(Duration::from_secs(2));
    let v = root.container("al");
    assert_eq!(v["State"]["Status"], "exited", "stays stopped: {v:#}");
    assert_eq!(v["RestartCount"], count, "no restart after stop");
    assert_eq!(root.wrun(&["ps", "-q"]).ok(), "");
}

/// `unless-stopped` stopped by hand stays stopped when the daemon comes
/// back, while an `always` container that was running is restarted.
#[test]
fn restart_unless_stopped_stays_stopped_across_a_daemon_restart() {
    let root = Root::new();
    root.busybox();
    for (name, policy) in [("us", "unless-stopped"), ("al", "always")] {
        root.wrun(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    }
    assert_eq!(root.wrun(&["stop", "us"]).ok(), "us\n");
    root.wrun(&["daemon", "stop"]).ok();
    // The new daemon restarts `al`; by then it has decided about `us` too.
    wait_status(&root, "al", "running");
    let v = root.container("us");
    assert_eq!(v["State"]["Status"], "exited", "{v:#}");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    let row = ps_row(&root, "us").expect("listed");
    assert!(row.contains("Exited (137)"), "{row}");
    // Started by hand, it runs again.
    root.wrun(&["start", "us"]).ok();
    assert_eq!(root.container("us")["State"]["Status"], "running");
}

/// Docker restarts an `always` container on daemon start even when it
/// was stopped by hand; only `unless-stopped` remembers the stop.
#[test]
fn restart_always_stopped_by_hand_restarts_with_the_daemon() {
    let root = Root::new();
    root.busybox();
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "al",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    root.wrun(&["stop", "al"]).ok();
    root.wrun(&["daemon", "stop"]).ok();
    root.wrun(&["ps"]).ok();
    wait_status(&root, "al", "running");
}

/// A `--rm` container that the daemon's shutdown stopped is removed when
/// the daemon comes back, as Docker's restore does, instead of lingering
/// as an exited container nobody asked to keep.
#[test]
fn rm_containers_stopped_by_the_daemon_are_removed_when_it_returns() {
    let root = Root::new();
    root.busybox();
    let id = root
        .wrun(&[
            "run", "-d", "--rm", "--name", "tmp", "busybox", "sleep", "600",
        ])
        .ok()
        .trim()
        .to_string();
    root.wrun(&["daemon", "stop"]).ok();
    poll("the --rm container to be removed", || {
        root.wrun(&["ps", "-a", "-q"]).ok().is_empty().then_some(())
    });
    assert!(!root.path().join("containers").join(&id).exists());
}

/// Bad policies are refused before anything is created.
#[test]
fn bad_restart_policies_are_refused() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "--restart", "bogus", "busybox", "true"])
        .fails(125, "invalid restart policy \"bogus\"");
    root.wrun(&["run", "--restart", "on-failure:many", "busybox", "true"])
        .fails(125, "invalid restart policy \"on-failure:many\"");
    root.wrun(&["run", "--rm", "--restart", "always", "busybox", "true"])
        .fails(125, "conflicting options");
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");
    // The API refuses the same, whichever client sends it.
    let a = api(
        &root,
        "POST",
        "/v1.43/containers/create",
        Some(
            r#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#,
        ),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.message().contains("conflicting options"), "{a:?}");
    let a = api(
        &root,
        "POST",
        "/v1.43/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"bogus"}}}"#),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.message().contains("bogus"), "{a:?}");
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");
}

/// Twenty clients at once each get their own container and output, and
/// `--rm` leaves nothing behind.
#[test]
fn twenty_concurrent_clients() {
    let root = Root::new();
    root.busybox();
    // Warm-up: the daemon exists before the burst.
    assert_eq!(
        root.wrun(&["run", "--rm", "busybox", "echo", "warm"]).ok(),
        "warm\n"
    );
    run_echo_clients(&root, 20);
}

/// Starts `clients` `wrun run --rm busybox echo N` at once; each must print
/// its own N and succeed, and nothing may be left behind.
fn run_echo_clients(root: &Root, clients: usize) {
    let children: Vec<(usize, Child)> = (0..clients)
        .map(|n| {
            let child = root
                .cmd(&["run", "--rm", "busybox", "echo", &n.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            (n, child)
        })
        .collect();
    for (n, child) in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "client {n}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{n}\n"));
    }
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");
}

/// Clients that find no daemon at the same moment start one between them.
#[test]
fn concurrent_first_clients_share_one_daemon() {
    let root = Root::new();
    root.busybox();
    assert!(!root.path().join("wrun.sock").exists());
    run_echo_clients(&root, 8);
}

/// `stop` ends a guest spinning in wasm code and one blocked in a host
/// call alike, at once, as killed (137) and not out of memory.
#[test]
fn stop_ends_spinning_and_blocked_guests() {
    let root = Root::new();
    root.busybox();
    root.wat_image(
        "spin",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
    );
    root.wrun(&["run", "-d", "--name", "spinner", "spin"]).ok();
    root.wrun(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "600"])
        .ok();
    for name in ["spinner", "sleeper"] {
        assert_eq!(root.container(name)["State"]["Running"], true, "{name}");
        assert_eq!(root.wrun(&["stop", name]).ok(), format!("{name}\n"));
        let v = root.container(name);
        assert_eq!(v["State"]["Status"], "exited", "{name}: {v:#}");
        assert_eq!(v["State"]["ExitCode"], 137, "{name}");
        assert_eq!(v["State"]["OOMKilled"], false, "{name}");
        let row = ps_row(&root, name).expect("listed");
        assert!(row.contains("Exited (137)"), "{row}");
    }
    // `kill -s INT` ends a guest as interrupted.
    root.wrun(&["start", "spinner"]).ok();
    assert_eq!(
        root.wrun(&["kill", "-s", "INT", "spinner"]).ok(),
        "spinner\n"
    );
    assert_eq!(root.container("spinner")["State"]["ExitCode"], 130);
    // Stopping a stopped container is fine; killing one is an error.
    assert_eq!(root.wrun(&["stop", "spinner"]).ok(), "spinner\n");
    root.wrun(&["kill", "spinner"]).fails(1, "is not running");
}

/// A guest that outgrows `--memory` ends with 137 and, as in Docker,
/// `State.OOMKilled` says so (a plain stop leaves it false, above).
#[test]
fn out_of_memory_shows_in_inspect() {
    let root = Root::new();
    root.busybox();
    let r = root.wrun(&["run", "--name", "m", "-m", "1m", "busybox", "true"]);
    assert_eq!(r.code, 137, "{r:?}");
    assert!(r.stderr.contains("out of memory"), "{r:?}");
    let v = root.container("m");
    assert!(
        v["State"]["Error"]
            .as_str()
            .is_some_and(|e| e.contains("out of memory")),
        "{v:#}"
    );
    assert_eq!(v["State"]["OOMKilled"], true, "{v:#}");
}

/// Malformed or impossible requests get Docker's statuses and a message
/// that names the problem; the daemon keeps answering.
#[test]
fn bad_api_requests_get_docker_statuses() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "-d", "--name", "busy", "busybox", "sleep", "600"])
        .ok();

    let a = api(
        &root,
        "POST",
        "/v1.43/containers/create",
        Some(r#"{"Image": "#),
    );
    assert_eq!(a.status, 400, "{a:?}");
    let m = a.message();
    assert!(
        m.contains("invalid container create body") && m.contains("EOF"),
        "{m}"
    );
    let a = api(&root, "POST", "/v1.43/containers/create", Some("[1, 2]"));
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.message().contains("invalid container create body"),
        "{a:?}"
    );

    let a = api(
        &root,
        "POST",
        "/v1.43/containers/create",
        Some(r#"{"Cmd": ["true"]}"#),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.message().contains("Image"), "{a:?}");

    let a = api(
        &root,
        "POST",
        "/v1.43/containers/create",
        Some(r#"{"Image": "nosuchimage"}"#),
    );
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.message().contains("No such image: nosuchimage"), "{a:?}");

    let a = api(&root, "GET", "/v1.43/containers/nosuch/json", None);
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.message(), "No such container: nosuch");
    let a = api(&root, "POST", "/v1.43/containers/nosuch/start", None);
    assert_eq!(a.status, 404, "{a:?}");

    let a = api(
        &root,
        "POST",
        "/v1.43/containers/create?name=busy",
        Some(r#"{"Image": "busybox"}"#),
    );
    assert_eq!(a.status, 409, "{a:?}");
    assert!(a.message().contains("\"/busy\" is already in use"), "{a:?}");

    let a = api(&root, "DELETE", "/v1.43/containers/busy", None);
    assert_eq!(a.status, 409, "{a:?}");
    assert!(a.message().contains("is running"), "{a:?}");
    assert_eq!(root.container("busy")["State"]["Running"], true);

    let a = api(&root, "POST", "/v1.43/containers/busy/start", None);
    assert_eq!((a.status, a.body.as_str()), (304, ""), "{a:?}");

    let a = api(&root, "GET", "/v1.43/no/such/endpoint", None);
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.message().contains("/no/such/endpoint"), "{a:?}");

    // Versioned and unversioned paths are the same API; unknown versions
    // are refused.
    for path in ["/_ping", "/v1.43/_ping", "/v1.24/_ping"] {
        let a = api(&root, "GET", path, None);
        assert_eq!((a.status, a.body.as_str()), (200, "OK"), "{path}: {a:?}");
    }
    let a = api(&root, "GET", "/v9.99/_ping", None);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.message().contains("9.99"), "{a:?}");
    let unversioned = api(&root, "GET", "/containers/busy/json", None);
    let versioned = api(&root, "GET", "/v1.43/containers/busy/json", None);
    assert_eq!((unversioned.status, versioned.status), (200, 200));
    assert_eq!(unversioned.json()["Id"], versioned.json()["Id"]);
    let list = api(&root, "GET", "/containers/json", None);
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json().as_array().map(Vec::len), Some(1), "{list:?}");

    // A create that works through the same socket.
    let a = api(
        &root,
        "POST",
        "/containers/create?name=made",
        Some(r#"{"Image": "busybox", "Cmd": ["echo", "made"]}"#),
    );
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.json()["Id"].as_str().expect("Id").to_string();
    assert_eq!(id.len(), 64);
    let a = api(&root, "POST", &format!("/containers/{id}/start"), None);
    assert_eq!(a.status, 204, "{a:?}");
    let a = api(&root, "POST", "/containers/made/wait", None);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["StatusCode"], 0, "{a:?}");
    assert_eq!(root.wrun(&["logs", "made"]).ok(), "made\n");

    // After all that the daemon still answers, and nothing stray was made.
    let a = api(&root, "GET", "/_ping", None);
    assert_eq!((a.status, a.body.as_str()), (200, "OK"));
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok().lines().count(), 2);
}

/// One daemon per root; `--no-start` does not start one; `info` tells
/// where it listens; only its owner can use the socket.
#[test]
fn one_daemon_per_root_and_its_address() {
    let root = Root::new();
    root.wrun(&["--no-start", "ps"])
        .fails(125, "cannot connect to the wrun daemon");
    assert!(
        !root.path().join("wrun.sock").exists() && !root.path().join("daemon.lock").exists(),
        "--no-start started nothing"
    );
    let mut no_start = root.cmd(&["ps"]);
    no_start.env("WRUN_NO_START", "true");
    let out = no_start.output().expect("spawn");
    assert_eq!(out.status.code(), Some(125));
    assert!(!root.path().join("wrun.sock").exists());

    // Any container verb starts the daemon.
    assert_eq!(root.wrun(&["ps", "-q"]).ok(), "");
    let sock = root.path().join("wrun.sock");
    let info = root.wrun(&["info"]);
    let address = format!("unix://{}", sock.display());
    assert!(
        info.ok()
            .lines()
            .any(|l| l.trim() == format!("Host: {address}")),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout.contains(&format!("DOCKER_HOST={address}")),
        "{}",
        info.stdout
    );
    {
        use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
        let meta = std::fs::metadata(&sock).expect("socket");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    // A second daemon for the same root refuses to start.
    let mut second = root
        .cmd(&["daemon"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_child(&mut second, "a second daemon");
    let mut err = String::new();
    second
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert_eq!(status.code(), Some(125), "{err}");
    assert!(err.contains("already running"), "{err}");
    let pid = std::fs::read_to_string(root.path().join("daemon.lock")).expect("lock");
    assert!(err.contains(&format!("pid {}", pid.trim())), "{err}");
    // The first one is unharmed.
    assert_eq!(root.wrun(&["--no-start", "ps", "-q"]).ok(), "");
}

/// Clap rejects `WRUN_NO_START=1`, the usual way to set a boolean
/// environment variable.
#[test]
fn no_start_env_takes_one() {
    let root = Root::new();
    let mut c = root.cmd(&["ps"]);
    c.env("WRUN_NO_START", "1");
    let out = c.output().expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the wrun daemon"),
        "{stderr}"
    );
}

/// `wait` prints the exit code (waiting for a running container to end);
/// `rename` renames, and the old name is then unknown.
#[test]
fn wait_and_rename() {
    let root = Root::new();
    root.busybox();
    let r = root.wrun(&["run", "--name", "w", "busybox", "sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert_eq!(root.wrun(&["wait", "w"]).ok(), "7\n");

    root.wrun(&["run", "-d", "--name", "s", "busybox", "sleep", "600"])
        .ok();
    let mut waiter = root
        .cmd(&["wait", "s"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn wait");
    // `wait` blocks while the container runs; stopping it releases it.
    assert!(waiter.try_wait().expect("try_wait").is_none());
    root.wrun(&["stop", "s"]).ok();
    assert!(wait_child(&mut waiter, "wait").success());
    let mut out = String::new();
    waiter
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(out, "137\n");

    let id = root.container("w")["Id"].as_str().expect("Id").to_string();
    root.wrun(&["rename", "w", "w2"]).ok();
    let v = root.container("w2");
    assert_eq!(v["Name"], "/w2");
    assert_eq!(v["Id"], id.as_str());
    root.wrun(&["inspect", "w"]).fails(1, "No such object: w");
    root.wrun(&["wait", "w"]).fails(1, "No such container: w");
    assert_eq!(root.wrun(&["wait", "w2"]).ok(), "7\n");
    assert!(ps_row(&root, "w2").is_some() && ps_row(&root, "w").is_none());
    // The name is free again, and taken names cannot be taken.
    root.wrun(&["run", "--name", "w", "busybox", "true"]).ok();
    root.wrun(&["rename", "w", "s"])
        .fails(125, "already in use");
    root.wrun(&["rename", "nosuch", "x"])
        .fails(125, "No such container: nosuch");
}

/// `rm -f` of a running `--rm` container succeeds, as Docker's does, even
/// though the container's own removal on exit races with it; the container
/// is gone afterwards either way.
#[test]
fn force_removing_a_running_rm_container_succeeds() {
    let root = Root::new();
    root.busybox();
    for i in 0..20 {
        let name = format!("gone{i}");
        root.wrun(&[
            "run", "-d", "--rm", "--name", &name, "busybox", "sleep", "600",
        ])
        .ok();
        assert_eq!(root.wrun(&["rm", "-f", &name]).ok(), format!("{name}\n"));
        root.wrun(&["inspect", &name])
            .fails(1, &format!("No such object: {name}"));
    }
    assert!(all_ids(&root).is_empty(), "{:?}", all_ids(&root));
}

/// The daemon raises its soft open-file limit to the hard one, as dockerd
/// does: a client started with a soft limit of 256 (which the daemon it
/// starts inherits) still gets a daemon that may hold many containers.
#[test]
fn the_daemon_raises_its_open_file_limit() {
    let root = Root::new();
    root.busybox();
    // No daemon yet (or none left): the run below starts it.
    let _ = root.wrun(&["daemon", "stop"]);
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\""])
        .arg(crate::support::wrun_bin())
        .args(["run", "--rm", "busybox", "true"])
        .env("WRUN_ROOT", root.path())
        .env_remove("WRUN_HOST")
        .env_remove("WRUN_NO_START")
        .stdin(Stdio::null())
        .output()
        .expect("spawn sh");
    assert!(out.status.success(), "{out:?}");
    let pid = std::fs::read_to_string(root.path().join("daemon.lock")).expect("daemon.lock");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", pid.trim())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{limits}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    assert_eq!(soft, hard, "{line}");
}

/// `--log-opt max-size` and `max-file` bound a chatty container's log: it
/// is rotated, at most that many files are kept, and `logs` reads them
/// back in order. A bad option is refused by name.
#[test]
fn logs_rotate_at_their_size_limit() {
    let root = Root::new();
    root.busybox();
    root.wrun(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=50k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "cat",
        "/bin/busybox",
    ]);
    let id = root.container("chatty")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    // The log and its rotated files sit beside the container's directory.
    let dir = root.path().join("containers");
    let logs: Vec<u64> = std::fs::read_dir(&dir)
        .expect("the containers directory")
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{id}-json.log"))
        })
        .map(|e| e.metadata().expect("meta").len())
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    // Each file stops near the limit: a chunk may end past it, never a
    // second one.
    assert!(logs.iter().all(|n| *n < 50 * 1024 + 64 * 1024), "{logs:?}");
    let read = root.wrun(&["logs", "chatty"]);
    assert!(read.stdout.len() > 50 * 1024, "{}", read.stdout.len());
    root.wrun(&[
        "run",
        "--rm",
        "--log-opt",
        "max-size=lots",
        "busybox",
        "true",
    ])
    .fails(125, "max-size");
}

/// The daemon's instance pool (`--max-instances`) is no ceiling: guests
/// past it are allocated on demand, and run, exec, exit and stop as the
/// others do, instead of trapping.
#[test]
fn guests_past_the_instance_pool_run_as_the_others() {
    let root = Root::new();
    root.busybox();
    let _ = root.wrun(&["daemon", "stop"]);
    let mut daemon = root
        .cmd(&["daemon", "--max-instances", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the daemon");
    poll("the daemon to listen", || {
        UnixStream::connect(root.path().join("wrun.sock")).ok()
    });
    // Six sleepers: four fill the pool, two go past it.
    let names: Vec<String> = (0..6).map(|i| format!("past-{i}")).collect();
    for n in &names {
        root.wrun(&["run", "-d", "--name", n, "busybox", "sleep", "3600"])
            .ok();
    }
    for n in &names {
        let state = &root.container(n)["State"];
        assert_eq!(state["Status"], "running", "{n}: {state:#}");
        assert_eq!(state["Error"], "", "{n}: {state:#}");
    }
    // Past the pool, an exec runs, a run exits with its own code, and a
    // spinning guest is time-sliced and stopped (epochs are per engine).
    assert_eq!(
        root.wrun(&["exec", "past-5", "echo", "past the pool"])
            .ok()
            .trim(),
        "past the pool"
    );
    let ran = root.wrun(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(ran.code, 3, "{ran:?}");
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "spinner",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .ok();
    assert_eq!(
        root.wrun(&["exec", "past-0", "echo", "still served"])
            .ok()
            .trim(),
        "still served"
    );
    root.wrun(&["stop", "-t", "1", "spinner"]).ok();
    let state = &root.container("spinner")["State"];
    assert_eq!(state["Status"], "exited", "{state:#}");
    assert_eq!(state["ExitCode"], 137, "{state:#}");
    assert!(
        !state["Error"].as_str().unwrap_or_default().contains("trap"),
        "stopped, not trapped: {state:#}"
    );
    // A wasi:http component's per-request instances go past the pool too.
    root.kubia_http();
    let port = crate::support::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    root.wrun(&["run", "-d", "--name", "web", "-p", &publish, "kubia-http"])
        .ok();
    let body = crate::support::http_get_ok(port, HANG);
    assert!(body.starts_with("you've hit "), "{body}");
    let mut rm = vec!["rm", "-f", "spinner", "web"];
    rm.extend(names.iter().map(String::as_str));
    root.wrun(&rm).ok();
    root.wrun(&["daemon", "stop"]).ok();
    let _ = daemon.wait();
}
