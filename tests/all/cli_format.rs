//! wrun's own CLI in docker's habits: `--format` (table, json and Go
//! templates) on `ps`, `images`, `inspect`, `network ls` and `info`,
//! `--filter` on `images`, and `completion` scripts.

use crate::support::Root;

#[test]
fn format_and_filter_like_the_docker_cli() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["tag", "busybox", "mybox:v1"]).ok();
    root.wrun(&[
        "run", "-d", "--name", "web", "--label", "app=web", "busybox", "sleep", "60",
    ])
    .ok();
    root.wrun(&["run", "--name", "done", "busybox", "true"])
        .ok();

    // A Go template per row, over the docker CLI's fields.
    let out = root.wrun(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Labels}}"]);
    let mut rows: Vec<&str> = out.ok().lines().collect();
    rows.sort();
    assert_eq!(rows, ["done|exited|", "web|running|app=web"]);

    // `table TEMPLATE`: docker's header names, aligned columns.
    let out = root.wrun(&["ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Status}}"]);
    let text = out.ok();
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    assert!(header.starts_with("CONTAINER ID"), "{header}");
    assert!(
        header.contains("NAMES") && header.contains("STATUS"),
        "{header}"
    );
    let row = lines.next().expect("a row");
    assert!(row.contains(" web ") && row.contains("Up "), "{row}");
    assert_eq!(lines.next(), None, "only the running container");

    // `json`: one object per line with docker's keys.
    let out = root.wrun(&["ps", "--format", "json", "--filter", "label=app=web"]);
    let rows: Vec<serde_json::Value> = out
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Names"], "web");
    assert_eq!(rows[0]["State"], "running");
    assert_eq!(rows[0]["Image"], "busybox");

    // A field that does not exist is an error that names it.
    root.wrun(&["ps", "--format", "{{.Nonsense}}"])
        .fails(125, "Nonsense");
    root.wrun(&["ps", "--format", "{{.Names"])
        .fails(125, "invalid --format template");
    root.wrun(&["ps", "-q", "--format", "{{.ID}}"])
        .fails(125, "--quiet and --format");

    // inspect: the whole object, nested fields and functions.
    let out = root.wrun(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{json .Config.Cmd}} {{index .Config.Labels \"app\"}}",
        "web",
    ]);
    assert_eq!(out.ok(), "running [\"sleep\",\"60\"] web\n");
    let out = root.wrun(&["inspect", "-f", "{{.Missing}}", "web"]);
    assert_eq!(
        out.ok(),
        "<no value>\n",
        "a map's missing key, as Docker prints it"
    );
    let out = root.wrun(&["inspect", "--format", "json", "web"]);
    let v: serde_json::Value = serde_json::from_str(out.ok().trim()).expect("json");
    assert_eq!(v["Name"], "/web");

    // images: templates, the reference argument and --filter.
    let out = root.wrun(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = out.ok().lines().collect();
    names.sort();
    assert_eq!(names, ["busybox:latest", "mybox:v1"]);
    let out = root.wrun(&["images", "mybox"]);
    let text = out.ok();
    assert!(
        text.contains("mybox") && !text.contains("busybox"),
        "{text}"
    );
    let out = root.wrun(&[
        "images",
        "--filter",
        "reference=busy*",
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(out.ok(), "busybox\n");
    let out = root.wrun(&["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(out.ok(), "");
    root.wrun(&["images", "--filter", "colour=blue"])
        .fails(125, "colour");

    // network ls and info.
    let out = root.wrun(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(out.ok().lines().any(|l| l == "bridge bridge"), "{out:?}");
    let out = root.wrun(&["info", "--format", "{{.Containers}} {{.ContainersRunning}}"]);
    assert_eq!(out.ok(), "2 1\n");
    let out = root.wrun(&["info", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.ok().trim()).expect("json");
    assert_eq!(v["Containers"], 2);
}

#[test]
fn completion_scripts_for_each_shell() {
    let root = Root::new();
    for (shell, marker) in [
        ("bash", "complete -F _wrun"),
        ("zsh", "#compdef wrun"),
        ("fish", "complete -c wrun"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = root.wrun(&["completion", shell]);
        let text = out.ok();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
        assert!(text.contains("network"), "{shell} completes the verbs");
    }
    root.wrun(&["completion", "tcsh"]).fails(2, "tcsh");
    // No daemon was needed.
    assert!(!root.path().join("daemon.lock").exists());
}

/// The bash script really completes: bash sources it and calls it as
/// bash's `complete -F` would for `wrun net<TAB>`.
#[test]
fn bash_completion_completes_verbs() {
    let root = Root::new();
    let script = root.path().join("wrun.bash");
    std::fs::write(&script, root.wrun(&["completion", "bash"]).ok()).expect("write");
    let probe = format!(
        "source {}; COMP_WORDS=(wrun net); COMP_CWORD=1; COMP_LINE='wrun net'; COMP_POINT=8; _wrun wrun net wrun; echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(
        words.split_whitespace().any(|w| w == "network"),
        "{words:?} {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `wrun history` and `docker history` (through `GET
/// /images/{name}/history`) show the build's steps, newest first, with the
/// image's ID on the top step and the layer's size on the step that made
/// it.
#[test]
fn history_shows_the_build_steps() {
    let root = Root::new();
    root.busybox();
    let out = root.wrun(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        "busybox",
    ]);
    let lines: Vec<&str> = out.ok().lines().collect();
    let id = root.image_id("busybox");
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], format!("{short}|CMD [\"sh\"]|0B"));
    assert!(
        lines[2].starts_with("<missing>|COPY ${TARGET}/ /|"),
        "{lines:?}"
    );
    assert!(
        !lines[2].ends_with("|0B"),
        "the COPY made the layer: {lines:?}"
    );
    root.wrun(&["history", "nothing-here"])
        .fails(125, "nothing-here");

    root.wrun(&["ps"]).ok();
    let config = tempfile::tempdir().expect("tempdir");
    let out = crate::docker_cli::ran(
        crate::docker_cli::docker_cmd(
            &root,
            config.path(),
            &["history", "--format", "{{.CreatedBy}}", "busybox"],
        )
        .output()
        .unwrap_or_else(|e| crate::docker_cli::spawn_failed(e)),
    );
    assert_eq!(
        out.ok(),
        "CMD [\"sh\"]\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY ${TARGET}/ /\nARG TARGET=wasip2\n"
    );
    let missing = crate::support::api(&root, "GET", "/images/nothing-here/history", None);
    assert_eq!(missing.status, 404, "{}", missing.message());
}

/// A reader that closes the pipe before wrun prints (`wrun ps -a | head
/// -0`) ends wrun quietly, with the status a shell shows for SIGPIPE,
/// rather than with a panic and its backtrace.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "--name", "done", "busybox", "true"])
        .ok();
    // `ps -a` writes through io::Write; `ps -q` with the print macros,
    // which panic on a write error.
    for args in [&["ps", "-a"][..], &["ps", "-aq"]] {
        let mut child = root
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn wrun ps");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wrun ps");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr, "", "{args:?}");
        assert_eq!(out.status.code(), Some(141), "{args:?}");
    }
}
