//! The busybox sample as scripts and people use it: the applets with
//! their common options and the shell's loops, in a real container; kubia
//! built FROM busybox, explored with exec as in the walk-through; and tar
//! through exec, the way `kubectl cp` moves files.

use std::process::Stdio;

use crate::support::Root;

#[test]
fn applets_and_shell_loops_in_a_container() {
    let root = Root::new();
    root.busybox();
    let script = r#"
        for i in 3 1 2 1; do echo "line $i"; done > /tmp/f
        sort /tmp/f | uniq -c
        head -n 1 /tmp/f; tail -n 1 /tmp/f; wc -l /tmp/f
        grep -c "line 1" /tmp/f
        grep -v 1 /tmp/f | cut -d " " -f 2 | tee /tmp/g | sort -rn
        printf "%s=%03d|%-4s|\n" a 7 b
        n=0; while [ $n -lt 3 ]; do n=$((n+1)); done; echo n=$n
        until [ $n -eq 0 ]; do n=$((n-1)); done; echo n=$n
        id; whoami; uname -s; date -u -d @86400 +%Y-%m-%dT%H:%M
        touch /tmp/t && ls /tmp
        if grep -q 2 /tmp/g; then echo has2; else echo no2; fi
        echo "$(echo nested) $(wc -l < /tmp/g)"
        grep nothing /tmp/f; echo "grep misses: $?"
    "#;
    let out = root.wrun(&["run", "--rm", "busybox", "sh", "-c", script]);
    let expected = concat!(
        "      2 line 1\n",
        "      1 line 2
      1 line 3
line 3
line 1
4 /tmp/f
2
3
2
a=007|b   |
n=3
n=0
uid=0(root) gid=0(root) groups=0(root)
root
WASI
1970-01-02T00:00
f
g
t
has2
nested 2
grep misses: 1
"
    );
    assert_eq!(out.ok(), expected);
}

/// `docker exec -it kubia-container bash`, then `ps aux` and `ls /`, as in
/// the walk-through: the app is PID 1 beside the shell's own processes,
/// and the root holds app.wasm beside busybox's bin/ and etc/.
#[test]
fn kubia_is_explorable_with_exec() {
    let root = Root::new();
    root.kubia();
    root.wrun(&["run", "-d", "--name", "kubia-container", "kubia"])
        .ok();
    let ps = root.wrun(&["exec", "kubia-container", "ps", "aux"]);
    let text = ps.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("PID"), "{text}");
    assert!(
        lines[1].trim_start().starts_with("1 ") && lines[1].ends_with("/app.wasm"),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.ends_with("ps aux")), "{text}");
    assert_eq!(lines.len(), 3, "only the app and ps: {text}");
    let ls = root.wrun(&["exec", "kubia-container", "ls", "/"]);
    let entries: Vec<&str> = ls.ok().lines().collect();
    for want in ["app.wasm", "bin", "etc", "tmp"] {
        assert!(entries.contains(&want), "{entries:?}");
    }
    let sh = root.wrun(&[
        "exec",
        "kubia-container",
        "sh",
        "-c",
        "wget -q -O- http://127.0.0.1:8080/",
    ]);
    assert!(sh.ok().starts_with("you've hit "), "{sh:?}");
    root.wrun(&["rm", "-f", "kubia-container"]).ok();
}

/// `tar xf - -C DIR` and `tar cf - PATH` through exec, with a directory
/// and a symlink, as `kubectl cp` runs them; an entry that climbs out is
/// refused by name and nothing lands outside.
#[test]
fn tar_through_exec_both_ways() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "-d", "--name", "box", "busybox", "sleep", "60"])
        .ok();

    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link");
        }
        archive.append_data(&mut h, path, data).expect("append");
    };
    add("up/", tar::EntryType::Directory, b"", None);
    add(
        "up/hello.txt",
        tar::EntryType::Regular,
        b"hello from the host\n",
        None,
    );
    add("up/link", tar::EntryType::Symlink, b"", Some("hello.txt"));
    let bytes = archive.into_inner().expect("tar");

    let out = root.wrun_with_input(
        &["exec", "-i", "box", "tar", "xf", "-", "-C", "/tmp"],
        &bytes,
    );
    out.ok();
    let cat = root.wrun(&["exec", "box", "cat", "/tmp/up/link"]);
    assert_eq!(cat.ok(), "hello from the host\n");

    root.wrun(&[
        "exec",
        "box",
        "sh",
        "-c",
        "echo made inside > /tmp/up/inside.txt",
    ])
    .ok();
    let out = root
        .cmd(&["exec", "box", "tar", "cf", "-", "-C", "/tmp", "up"])
        .stdout(Stdio::piped())
        .output()
        .expect("tar out");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names = Vec::new();
    let mut inside = String::new();
    let mut link = None;
    for entry in tar::Archive::new(&out.stdout[..])
        .entries()
        .expect("entries")
    {
        let mut e = entry.expect("entry");
        let path = e.path().expect("path").to_string_lossy().into_owned();
        if path.ends_with("inside.txt") {
            std::io::Read::read_to_string(&mut e, &mut inside).expect("read");
        }
        if path.ends_with("link") {
            link = e
                .link_name()
                .expect("link")
                .map(|l| l.to_string_lossy().into_owned());
        }
        names.push(path);
    }
    names.sort();
    assert_eq!(names, ["up/", "up/hello.txt", "up/inside.txt", "up/link"]);
    assert_eq!(inside, "made inside\n");
    assert_eq!(link.as_deref(), Some("hello.txt"));

    // An entry that climbs out is refused by name; the rest still lands.
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // The tar crate refuses to write `..` itself: set the raw name.
    h.as_gnu_mut().expect("gnu").name[..10].copy_from_slice(b"../escaped");
    h.set_cksum();
    evil.append(&h, &b"bad\n"[..]).expect("append");
    let mut ok = tar::Header::new_gnu();
    ok.set_size(3);
    ok.set_mode(0o644);
    ok.set_entry_type(tar::EntryType::Regular);
    evil.append_data(&mut ok, "fine.txt", &b"ok\n"[..])
        .expect("append");
    let evil = evil.into_inner().expect("tar");
    let out = root.wrun_with_input(
        &["exec", "-i", "box", "tar", "xf", "-", "-C", "/tmp/up"],
        &evil,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("../escaped"), "{out:?}");
    let ls = root.wrun(&["exec", "box", "ls", "/tmp"]);
    assert!(!ls.ok().contains("escaped"), "{ls:?}");
    assert_eq!(
        root.wrun(&["exec", "box", "cat", "/tmp/up/fine.txt"]).ok(),
        "ok\n"
    );
    root.wrun(&["rm", "-f", "box"]).ok();
}
