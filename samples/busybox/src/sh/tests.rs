//! Unit tests for the shell: lexing and parsing (quotes, operators,
//! redirections, syntax errors) and evaluation (expansion, exit, redirects).

#![allow(clippy::unwrap_used)]

use super::lex::{RedirOp, Seg, Word};
use super::parse::{Command, Conn, Simple, parse};
use crate::ctx::{Env, capture};

fn lit(s: &str) -> Word {
    Word(vec![Seg::Lit {
        text: s.to_string(),
        quoted: false,
    }])
}

/// The simple command at `cmd`.
fn simple(cmd: &Command) -> &Simple {
    match cmd {
        Command::Simple(s) => s,
        Command::Compound(..) => panic!("not a simple command: {cmd:?}"),
    }
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
    assert_eq!(
        simple(&script[0].first.cmds[0]).words,
        vec![lit("a"), lit("b")]
    );
    let conns: Vec<Conn> = script[1].rest.iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, vec![Conn::And, Conn::Or]);
    assert_eq!(script[2].first.cmds.len(), 2);
    // Newlines may follow a binary operator.
    assert_eq!(parse("a &&\n\n b").unwrap()[0].rest.len(), 1);
    assert!(parse("  \n# only a comment\n").unwrap().is_empty());
}

#[test]
fn parses_quotes_and_escapes() {
    let script = parse(r#"echo 'a  b' "c $X d" e\ f "" x#y # comment"#).unwrap();
    let words = &simple(&script[0].first.cmds[0]).words;
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
    let cmd = simple(&script[0].first.cmds[0]);
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
    // /dev/null works without the device file.
    assert_eq!(
        sh("echo gone >/dev/null; cat /nonexistent 2>/dev/null; cat </dev/null; echo $?"),
        (0, "0\n".into(), String::new())
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

#[test]
fn for_loops() {
    assert_eq!(out("for i in 1 2 3; do echo $i; done"), "1\n2\n3\n");
    assert_eq!(
        out("for i in a 'b c'; do echo \"[$i]\"; done"),
        "[a]\n[b c]\n"
    );
    assert_eq!(out("Y='x y'; for i in $Y z; do echo $i; done"), "x\ny\nz\n");
    assert_eq!(out("for i in; do echo no; done; echo $?"), "0\n");
    assert_eq!(
        out("for i\ndo\n  echo $i\ndone\necho after"),
        "after\n",
        "no positional parameters"
    );
    let args = ["-c", "for a; do echo $a; done", "sh", "p1", "p2"].map(String::from);
    assert_eq!(
        capture("", &env(), |ctx| super::main(ctx, &args)).1,
        "p1\np2\n"
    );
    // Reserved words are only special in command position.
    assert_eq!(
        out("for do in for done; do echo do $do; done"),
        "do for\ndo done\n"
    );
    assert_eq!(out("for i in 1 2; do echo $i; done | cat"), "1\n2\n");
    let (_, o, _) = sh("for i in 1 2 3; do echo $i; done | wc -l");
    assert_eq!(o.trim(), "3");
}

#[test]
fn while_and_until_loops() {
    assert_eq!(
        out("i=0; while [ $i -lt 3 ]; do echo $i; i=$((i+1)); done"),
        "0\n1\n2\n"
    );
    assert_eq!(
        out("i=3; until test $i -eq 0; do echo $i; i=$((i - 1)); done"),
        "3\n2\n1\n"
    );
    assert_eq!(out("while false; do echo no; done; echo $?"), "0\n");
    assert_eq!(
        sh_in(
            "while read line; do echo \"<$line>\"; done",
            "a b\n  c  \nlast"
        )
        .1,
        "<a b>\n<c>\n"
    );
    // A last line without a newline is read, but `read` says input ended.
    assert_eq!(sh_in("read v; echo $? $v", "last").1, "1 last\n");
    assert_eq!(sh_in("read -r v; echo \"$v\"", "a\\ b\n").1, "a\\ b\n");
    assert_eq!(sh_in("read v; echo \"$v\"", "a\\ b\\\nc\n").1, "a bc\n");
    assert_eq!(
        sh_in("while read a b; do echo $b-$a; done", "1 2 3\nx\n").1,
        "2 3-1\n-x\n"
    );
}

#[test]
fn break_and_continue() {
    assert_eq!(
        out("for i in 1 2 3 4; do if [ $i = 3 ]; then break; fi; echo $i; done; echo end"),
        "1\n2\nend\n"
    );
    assert_eq!(
        out("for i in 1 2 3; do if [ $i = 2 ]; then continue; fi; echo $i; done"),
        "1\n3\n"
    );
    assert_eq!(
        out("while true; do echo once; break; echo no; done"),
        "once\n"
    );
    assert_eq!(
        out("for i in a b; do for j in 1 2; do echo $i$j; break 2; done; done; echo x"),
        "a1\nx\n"
    );
    assert_eq!(
        out("for i in a b; do for j in 1 2; do [ $j = 2 ] && continue 2; echo $i$j; done; done"),
        "a1\nb1\n"
    );
    // Outside a loop they do nothing.
    assert_eq!(out("break; echo still"), "still\n");
    assert_eq!(sh("for i in 1; do break x; done").0, 2);
}

#[test]
fn if_elif_else() {
    let script = |v: &str| {
        format!(
            "v={v}; if [ $v = a ]; then echo A; elif [ $v = b ]\nthen\n echo B\nelse echo other; fi"
        )
    };
    assert_eq!(out(&script("a")), "A\n");
    assert_eq!(out(&script("b")), "B\n");
    assert_eq!(out(&script("c")), "other\n");
    assert_eq!(out("if false; then echo no; fi; echo $?"), "0\n");
    assert_eq!(out("if ! false; then echo neg; fi"), "neg\n");
    assert_eq!(sh("if true; then false; fi").0, 1);
    assert_eq!(
        out("if true; then if false; then echo x; else echo nested; fi; fi"),
        "nested\n"
    );
    // The compound command's redirections cover all its output.
    let dir = crate::testutil::tempdir("sh-if");
    let f = dir.join("out");
    let f = f.to_str().unwrap();
    assert_eq!(
        out(&format!(
            "if true; then echo one; echo two; fi > {f}; for i in 3; do echo $i; done >> {f}; cat {f}"
        )),
        "one\ntwo\n3\n"
    );
    assert_eq!(
        out(&format!("while read l; do echo got $l; done < {f}")),
        "got one\ngot two\ngot 3\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn groups_and_subshells() {
    assert_eq!(out("{ echo a; echo b; } | cat"), "a\nb\n");
    assert_eq!(out("v=1; ( v=2; echo $v ); echo $v"), "2\n1\n");
    assert_eq!(out("(exit 3); echo $?"), "3\n");
    assert_eq!(out("v=1; { v=2; }; echo $v"), "2\n");
}

#[test]
fn command_substitution() {
    assert_eq!(out("echo \"[$(echo hi)]\""), "[hi]\n");
    assert_eq!(out("x=$(echo a; echo b); echo \"$x\""), "a\nb\n");
    assert_eq!(out("echo $(echo 1 2)x"), "1 2x\n");
    assert_eq!(out("for w in $(echo a b c); do echo $w; done"), "a\nb\nc\n");
    assert_eq!(out("echo $(echo $(echo nested))"), "nested\n");
    assert_eq!(out("echo `echo back` \"`echo q`\""), "back q\n");
    assert_eq!(out("x=$(false); echo $?"), "1\n");
    assert_eq!(out("v=1; x=$(v=2; echo $v); echo $x $v"), "2 1\n");
    assert_eq!(out("echo \"$(echo 'a)b')\""), "a)b\n");
    assert_eq!(out("echo $(for i in 1 2; do echo $i; done)"), "1 2\n");
}

#[test]
fn arithmetic_expansion() {
    assert_eq!(out("echo $((1 + 2 * 3))"), "7\n");
    assert_eq!(out("i=5; echo $((i * 2)) $(( $i - 1 ))"), "10 4\n");
    assert_eq!(out("echo $((x = 3)) $x"), "3 3\n");
    let (code, o, e) = sh("echo $((1 / 0)); echo next");
    assert_eq!((code, o.as_str()), (0, "next\n"));
    assert_eq!(e, "sh: division by zero\n");
}

#[test]
fn test_builtin() {
    let dir = crate::testutil::tempdir("sh-test");
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("f"), "x").unwrap();
    for (expr, want) in [
        ("[ a = a ]", 0),
        ("[ a != a ]", 1),
        ("[ -n '' ]", 1),
        ("[ -z '' ]", 0),
        ("[ 3 -gt 2 ]", 0),
        ("[ 3 -le 2 ]", 1),
        ("test x", 0),
        ("test ''", 1),
        ("[ ]", 1),
        ("[ ! a = b ]", 0),
        ("[ a = a -a b = c ]", 1),
        ("[ a = a -o b = c ]", 0),
        ("[ \\( a = b \\) -o -n x ]", 0),
        ("[ -n = -n ]", 0),
        ("[ x -eq 1 ]", 2),
        ("[ a = a", 2),
    ] {
        assert_eq!(sh(expr).0, want, "{expr}");
    }
    assert_eq!(sh(&format!("[ -f {d}/f ]")).0, 0);
    assert_eq!(sh(&format!("[ -d {d}/f ]")).0, 1);
    assert_eq!(sh(&format!("[ -d {d} -a -s {d}/f ]")).0, 0);
    assert_eq!(sh(&format!("[ -e {d}/nope ]")).0, 1);
    assert_eq!(sh("[ a = a").2, "sh: [: missing ]\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compound_syntax_errors() {
    for (src, msg, incomplete) in [
        (
            "for i in 1 2; do echo $i",
            "unexpected end of input (expecting 'done')",
            true,
        ),
        (
            "if true; then echo",
            "unexpected end of input (expecting 'fi')",
            true,
        ),
        (
            "while true",
            "unexpected end of input (expecting 'do')",
            true,
        ),
        ("echo $(echo", "unterminated '$('", true),
        ("echo `echo", "unterminated '`'", true),
        ("if true; then fi", "unexpected 'fi'", false),
        ("done", "unexpected 'done'", false),
        ("for 1 in a; do echo; done", "bad for loop variable", false),
        ("if true; fi", "unexpected 'fi'", false),
        (
            "{ echo a }",
            "unexpected end of input (expecting '}')",
            true,
        ),
        ("( echo a", "unterminated '('", true),
        ("echo )", "unexpected ')'", false),
    ] {
        let err = parse(src).unwrap_err();
        assert_eq!(
            (err.msg.as_str(), err.incomplete),
            (msg, incomplete),
            "{src}"
        );
    }
    // Compound commands may span lines when read from stdin.
    let args: Vec<String> = Vec::new();
    let (code, o, e) = capture(
        "for i in 1 2\ndo\n  echo $i\ndone\nif true\nthen echo yes\nfi\n",
        &env(),
        |ctx| super::main(ctx, &args),
    );
    assert_eq!((code, o.as_str(), e.as_str()), (0, "1\n2\nyes\n", ""));
}

#[test]
fn set_and_positional_parameters() {
    assert_eq!(
        out("set -- a 'b c'; echo $#; for x in \"$@\"; do echo \"[$x]\"; done"),
        "2\n[a]\n[b c]\n"
    );
    assert_eq!(
        out("set --; for x in \"$@\"; do echo no; done; echo $#"),
        "0\n"
    );
    assert_eq!(
        out("set -- 1 2 3; shift; echo $@; shift 2; echo $#"),
        "2 3\n0\n"
    );
    assert_eq!(out("set x y; echo \"$1-$2\""), "x-y\n");
    let args = [
        "-c",
        "for a in \"$@\"; do echo \"<$a>\"; done",
        "sh",
        "p 1",
        "p2",
    ]
    .map(String::from);
    assert_eq!(
        capture("", &env(), |ctx| super::main(ctx, &args)).1,
        "<p 1>\n<p2>\n"
    );
    let (code, _, e) = sh("set -q");
    assert_eq!((code, e.as_str()), (2, "sh: set: illegal option -q\n"));
}

#[test]
fn errexit_and_xtrace() {
    assert_eq!(
        sh("set -e; echo a; false; echo b"),
        (1, "a\n".into(), String::new())
    );
    // Tested commands do not end the shell.
    assert_eq!(
        out(
            "set -e; false || true; if false; then :; fi; while false; do :; done; ! true; false && true; echo on"
        ),
        "on\n"
    );
    assert_eq!(sh("set -e; (exit 3); echo no").0, 3);
    assert_eq!(sh("set -e; x=$(false); echo no").0, 1);
    assert_eq!(sh("set -e; set +e; false; echo yes").1, "yes\n");
    assert_eq!(sh("set -o errexit; false; echo no").1, "");
    let (code, o, e) = sh("set -x; X=1 echo hi $X");
    assert_eq!(
        (code, o.as_str(), e.as_str()),
        (0, "hi hello\n", "+ X=1 echo hi hello\n")
    );
}
