//! Applets that describe the system and the user: uname, id and whoami.
//! A WASI guest has no kernel or users of its own, so the answers are the
//! honest constants: the system is WASI on wasm32, and everyone is root.

use crate::ctx::{Ctx, errmsg};
use crate::opts;

/// The WASI version this binary was built for.
const RELEASE: &str = if cfg!(target_env = "p2") {
    "preview2"
} else if cfg!(target_os = "wasi") {
    "preview1"
} else {
    "native"
};

/// `uname [-asnrvmpio]`: `-a` prints them all; no option means `-s`.
pub fn uname(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "asnrvmpio", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("uname", msg),
    };
    if let Some(extra) = opts.operands.first() {
        return ctx.fail("uname", format!("extra operand '{extra}'"));
    }
    let nodename = super::basic::nodename(ctx);
    let version = concat!("busybox-wasi ", env!("CARGO_PKG_VERSION"));
    let fields = [
        ('s', "WASI"),
        ('n', nodename.as_str()),
        ('r', RELEASE),
        ('v', version),
        ('m', "wasm32"),
        ('p', "unknown"),
        ('i', "unknown"),
        ('o', "WASI"),
    ];
    let all = opts.has('a');
    let mut shown: Vec<&str> = fields
        .iter()
        // -a leaves out -p and -i when they are unknown, like coreutils.
        .filter(|(f, _)| opts.has(*f) || (all && !matches!(f, 'p' | 'i')))
        .map(|(_, v)| *v)
        .collect();
    if shown.is_empty() {
        shown.push("WASI");
    }
    match writeln!(ctx.stdout, "{}", shown.join(" ")) {
        Ok(()) => 0,
        Err(e) => ctx.fail("uname", format!("write error: {}", errmsg(&e))),
    }
}

/// `id [-u|-g|-G] [-nr] [USER]`: only root exists.
pub fn id(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "ugGnr", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("id", msg),
    };
    match opts.operands.as_slice() {
        [] => {}
        [user] if user == "root" || user == "0" => {}
        [user] => return ctx.fail("id", format!("'{user}': no such user")),
        [_, extra, ..] => return ctx.fail("id", format!("extra operand '{extra}'")),
    }
    let which = ['u', 'g', 'G'].into_iter().filter(|&c| opts.has(c)).count();
    if which > 1 {
        return ctx.fail("id", "cannot print \"only\" of more than one choice");
    }
    if which == 0 && (opts.has('n') || opts.has('r')) {
        return ctx.fail(
            "id",
            "cannot print only names or real IDs in default format",
        );
    }
    let text = if which == 0 {
        "uid=0(root) gid=0(root) groups=0(root)"
    } else if opts.has('n') {
        "root"
    } else {
        "0"
    };
    match writeln!(ctx.stdout, "{text}") {
        Ok(()) => 0,
        Err(e) => ctx.fail("id", format!("write error: {}", errmsg(&e))),
    }
}

/// `whoami`
pub fn whoami(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if let Some(extra) = args.first() {
        return ctx.fail("whoami", format!("extra operand '{extra}'"));
    }
    match writeln!(ctx.stdout, "root") {
        Ok(()) => 0,
        Err(e) => ctx.fail("whoami", format!("write error: {}", errmsg(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::{Env, capture};

    fn run(f: super::super::Run, args: &[&str], env: &Env) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture("", env, |ctx| f(ctx, &args))
    }

    #[test]
    fn uname_fields() {
        let mut env = Env::new();
        env.insert("HOSTNAME".into(), "box1".into());
        assert_eq!(run(uname, &[], &env).1, "WASI\n");
        assert_eq!(run(uname, &["-n"], &env).1, "box1\n");
        assert_eq!(run(uname, &["-sm"], &env).1, "WASI wasm32\n");
        assert_eq!(
            run(uname, &["-a"], &env).1,
            format!(
                "WASI box1 {RELEASE} busybox-wasi {} wasm32 WASI\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(run(uname, &["-n"], &Env::new()).1, "localhost\n");
        assert_eq!(run(uname, &["-x"], &env).0, 1);
    }

    #[test]
    fn id_and_whoami() {
        let env = Env::new();
        assert_eq!(
            run(id, &[], &env).1,
            "uid=0(root) gid=0(root) groups=0(root)\n"
        );
        assert_eq!(run(id, &["-u"], &env).1, "0\n");
        assert_eq!(run(id, &["-gn"], &env).1, "root\n");
        assert_eq!(run(id, &["-un", "root"], &env).1, "root\n");
        assert_eq!(run(id, &["-G"], &env).1, "0\n");
        let (code, _, err) = run(id, &["bob"], &env);
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: id: 'bob': no such user\n")
        );
        assert_eq!(run(id, &["-u", "-g"], &env).0, 1);
        assert_eq!(run(whoami, &[], &env).1, "root\n");
        assert_eq!(run(whoami, &["x"], &env).0, 1);
    }
}
