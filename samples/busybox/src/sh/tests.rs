//! Unit tests for the shell: lexing and parsing (quotes, operators,
//! redirections, syntax errors) and evaluation (expansion, exit, redirects).

#![allow(clippy::unwrap_used)]

use super::lex::{RedirOp, Seg, Word};
use super::parse::{Conn, parse};
use crate::ctx::{Env, capture};

fn lit(s: &str) -> Word {
    Word(vec![Seg::Lit {
        text: s.to_string(),
        quoted: false,
    }])
}

fn env() -> Env {
    let mut env = Env::new();
    env.insert("HOME".into(), "/root".into());
    env.insert("X".into(), "hello".into());
    env
}

/// Runs `sh -c src`; returns (status, stdout, stderr).
fn sh(src: &str) -> (i32, String, String) {
    sh_in(src, "")
}

fn sh_in(src: &str, stdin: &str) -> (i32, String, String) {
    let args = vec!["-c".to_string(), src.to_string()];
    capture(stdin, &env(), |ctx| super::main(ctx, &args))
}

fn out(src: &str) -> String {
    let (code, out, err) = sh(src);
    assert_eq!((code, err.as_str()), (0, ""), "script: {src}");
    out
}

#[test]
fn parses_lists_and_operators() {
    let script = parse("a b; c && d || e\nf | g").unwrap();
    assert_eq!(script.len(), 3);
    assert_eq!(script[0].first[0].words, vec![lit("a"), lit("b")]);
    let conns: Vec<Conn> = script[1].rest.iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, vec![Conn::And, Conn::Or]);
    assert_eq!(script[2].first.len(), 2);
    // Newlines may follow a binary operator.
    assert_eq!(parse("a &&\n\n b").unwrap()[0].rest.len(), 1);
    assert!(parse("  \n# only a comment\n").unwrap().is_empty());
}

#[test]
fn parses_quotes_and_escapes() {
    let script = parse(r#"echo 'a  b' "c $X d" e\ f "" x#y # comment"#).unwrap();
    let words = &script[0].first[0].words;
    assert_eq!(words.len(), 6);
    assert_eq!(
        words[1],
        Word(vec![Seg::Lit {
            text: "a  b".into(),
            quoted: true
        }])
    );
    assert_eq!(
        words[2].0[1],
        Seg::Var {
            name: "X".into(),
            quoted: true
        }
    );
    assert_eq!(words[5], lit("x#y"));
}

#[test]
fn parses_redirections_and_assignments() {
    let script = parse("A=1 B=\"2 3\" cmd >out 2>>err <in 2>&1 x=y").unwrap();
    let cmd = &script[0].first[0];
    let names: Vec<&str> = cmd.assigns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    // After the command name, NAME=value is an ordinary argument.
    assert_eq!(cmd.words, vec![lit("cmd"), lit("x=y")]);
    let ops: Vec<RedirOp> = cmd.redirs.iter().map(|r| r.op).collect();
    assert_eq!(
        ops,
        [
            RedirOp::Out(1),
            RedirOp::Append(2),
            RedirOp::In(0),
            RedirOp::Dup(2, 1)
        ]
    );
    assert_eq!(cmd.redirs[0].target, Some(lit("out")));
    assert_eq!(cmd.redirs[3].target, None);
}

#[test]
fn syntax_errors() {
    for (src, msg) in [
        ("echo 'abc", "unterminated single quote"),
        ("echo \"abc", "unterminated double quote"),
        ("echo a;; echo b", "unexpected ';;'"),
        ("echo a; ; echo b", "unexpected ';'"),
        ("echo >", "missing file name after '>'"),
        ("echo 2> ; x", "missing file name after '2>'"),
        ("&& echo", "unexpected '&&'"),
        ("echo a &&", "unexpected end of input after '&&'"),
        ("echo ${A", "unterminated '${'"),
        ("echo ${A-b}", "bad substitution '${A-b}'"),
    ] {
        let err = parse(src).unwrap_err();
        assert_eq!(err.msg, msg, "{src}");
        let (code, out, stderr) = sh(src);
        assert_eq!((code, out.as_str()), (2, ""), "{src}");
        assert_eq!(stderr, format!("sh: syntax error: {msg}\n"));
    }
    assert!(parse("echo 'abc").unwrap_err().incomplete);
    assert!(!parse("echo a;;").unwrap_err().incomplete);
}

#[test]
fn sequencing_and_conditionals() {
    assert_eq!(out("echo a; echo b\necho c"), "a\nb\nc\n");
    assert_eq!(
        sh("false && echo no; true && echo yes; false || echo alt; true || echo no2").1,
        "yes\nalt\n"
    );
    assert_eq!(sh("false || false && echo x").1, "");
    assert_eq!(sh("false").0, 1);
    assert_eq!(sh("true; false; true").0, 0);
}

#[test]
fn exit_status() {
    assert_eq!(sh("exit 3; echo no"), (3, String::new(), String::new()));
    assert_eq!(sh("false; exit").0, 1);
    assert_eq!(sh("exit 256").0, 0);
    assert_eq!(sh("exit -1").0, 255);
    assert_eq!(sh("true && exit 4 || echo no").0, 4);
    assert_eq!(sh("exit abc").0, 2);
    assert_eq!(out("sh -c 'exit 5'; echo $?"), "5\n");
    // `exit` in a pipeline leaves only that pipeline member.
    assert_eq!(sh("exit 7 | echo still; echo here").1, "still\nhere\n");
}

#[test]
fn expansion() {
    assert_eq!(
        out("echo $X ${X}world \"$X\" '$X' \\$X"),
        "hello helloworld hello $X $X\n"
    );
    assert_eq!(out("false; echo $?; echo $?"), "1\n0\n");
    assert_eq!(out("echo a $NOPE b \"$NOPE\" c"), "a b  c\n");
    assert_eq!(
        out("Y='1  2'; echo $Y; echo \"$Y\"; echo x${Y}y"),
        "1 2\n1  2\nx1 2y\n"
    );
    assert_eq!(out("Z=$X-$X; echo $Z"), "hello-hello\n");
    assert_eq!(out("echo $ 5$ \"$\""), "$ 5$ $\n");
    assert_eq!(out("echo \"a\\\"b\" 'c\\d' \"\\$X\""), "a\"b c\\d $X\n");
    let args = ["-c", "echo $0 $# $1 $@", "name", "p1", "p2"].map(String::from);
    let (_, o, _) = capture("", &env(), |ctx| super::main(ctx, &args));
    assert_eq!(o, "name 2 p1 p1 p2\n");
}

#[test]
fn variables_and_environment() {
    // A prefix assignment reaches the command only.
    let o = out("A=1 env; echo \"[$A]\"");
    assert!(o.contains("A=1\n") && o.ends_with("[]\n"), "{o}");
    // Plain assignments are shell-local until exported.
    let o = out("B=2; env; echo ---; export B; export C=3; env");
    let (before, after) = o.split_once("---").unwrap();
    assert!(!before.contains("B=2"), "{o}");
    assert!(after.contains("B=2\n") && after.contains("C=3\n"), "{o}");
    assert!(out("export").contains("export X='hello'\n"));
    assert_eq!(sh("export 1x=2").0, 1);
    assert_eq!(out("hostname; HOSTNAME=box hostname"), "localhost\nbox\n");
}

#[test]
fn commands_and_paths() {
    assert_eq!(out("/bin/echo hi; busybox echo there"), "hi\nthere\n");
    assert_eq!(
        sh("nosuch arg; echo $?"),
        (0, "127\n".into(), "sh: nosuch: not found\n".into())
    );
    assert_eq!(out("echo -n a; echo b"), "ab\n");
    assert_eq!(out("echo hi | cat | cat"), "hi\n");
    assert_eq!(out("cat"), "");
    assert_eq!(sh_in("cat; echo done", "input\n").1, "input\ndone\n");
}

#[test]
fn redirections() {
    let dir = crate::testutil::tempdir("sh");
    let d = dir.to_str().unwrap();
    let script = format!(
        "echo hi > {d}/f; echo more >>{d}/f; cat < {d}/f; cat {d}/nope 2> {d}/e; \
         echo status $?; cat {d}/e"
    );
    let (code, o, e) = sh(&script);
    assert_eq!(code, 0);
    assert_eq!(e, "");
    assert!(
        o.starts_with("hi\nmore\nstatus 1\nbusybox: cat: ")
            && o.ends_with("/nope: No such file or directory\n"),
        "{o}"
    );
    // 2>&1 after >file sends both to the file; before it, stderr stays.
    let (_, o, e) = sh(&format!("cat {d}/nope >{d}/both 2>&1; cat {d}/both"));
    assert!(e.is_empty() && o.contains("/nope: No such file"), "{o} {e}");
    let (_, o, e) = sh(&format!("cat {d}/nope 2>&1 >{d}/only"));
    assert!(o.contains("/nope: No such file") && e.is_empty(), "{o} {e}");
    let (_, o, e) = sh(&format!("cat {d}/nope 2>&1 | cat"));
    assert!(o.contains("/nope: No such file") && e.is_empty(), "{o} {e}");
    // A redirection alone creates the file; assignments may come with it.
    assert_eq!(
        out(&format!("> {d}/empty; V=1 >{d}/v; cat {d}/empty; echo $V")),
        "1\n"
    );
    let (code, _, e) = sh(&format!("echo x > {d}/no/such/dir; echo $?"));
    assert_eq!(code, 0);
    assert!(
        e.starts_with(&format!("sh: can't create {d}/no/such/dir: ")),
        "{e}"
    );
    let (code, _, e) = sh(&format!("cat < {d}/missing"));
    assert_eq!(code, 1);
    assert!(e.starts_with(&format!("sh: can't open {d}/missing")), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_commands_from_stdin() {
    let args: Vec<String> = Vec::new();
    let run = |input: &str| capture(input, &env(), |ctx| super::main(ctx, &args));
    assert_eq!(run("echo a\nfalse\n"), (1, "a\n".into(), String::new()));
    assert_eq!(
        run("echo 'multi\nline' &&\n echo ok").1,
        "multi\nline\nok\n"
    );
    let (code, o, e) = run("echo 'oops\n");
    assert_eq!((code, o.as_str()), (2, ""));
    assert_eq!(e, "sh: syntax error: unterminated single quote\n");
    // A syntax error does not end the session; `exit` does.
    let (code, o, _) = run("echo a;;\necho b\nexit 9\necho c\n");
    assert_eq!((code, o.as_str()), (9, "b\n"));
    // Commands that read stdin consume the following lines.
    assert_eq!(run("cat\nline2\n").1, "line2\n");
}

#[test]
fn script_files_and_options() {
    let dir = crate::testutil::tempdir("script");
    let file = dir.join("s.sh");
    std::fs::write(&file, "#!/bin/sh\necho \"$0:$1\"\nexit 3\n").unwrap();
    let args = vec![file.to_str().unwrap().to_string(), "arg".to_string()];
    let (code, o, _) = capture("", &env(), |ctx| super::main(ctx, &args));
    assert_eq!((code, o), (3, format!("{}:arg\n", args[0])));
    let args = vec![format!("{}/missing.sh", dir.display())];
    let (code, _, e) = capture("", &env(), |ctx| super::main(ctx, &args));
    assert_eq!(code, 127);
    assert!(e.starts_with("sh: can't open '"), "{e}");
    let (code, _, e) = capture("", &env(), |ctx| super::main(ctx, &["-c".to_string()]));
    assert_eq!((code, e.as_str()), (2, "sh: -c requires an argument\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}
