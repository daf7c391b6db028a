//! Telling WebAssembly core modules, components and everything else apart
//! from a file's first bytes, so that a wrong file gets a clear error.

/// What a file's header says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A WebAssembly core module: WASIp1 programs.
    Module,
    /// A WebAssembly component: WASIp2 programs.
    Component,
    /// Not WebAssembly; the string names what it looks like instead.
    Other(&'static str),
}

impl WasmKind {
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Self::Module,
            [0, b'a', b's', b'm', _, _, 1, 0, ..] => Self::Component,
            [0, b'a', b's', b'm', ..] => Self::Other("WebAssembly of an unknown version"),
            [0x7f, b'E', b'L', b'F', ..] => Self::Other("an ELF executable, a Linux binary"),
            [b'M', b'Z', ..] => Self::Other("a Windows PE executable"),
            [0xcf, 0xfa, 0xed, 0xfe, ..] | [0xca, 0xfe, 0xba, 0xbe, ..] => {
                Self::Other("a Mach-O executable, a macOS binary")
            }
            [b'#', b'!', ..] => Self::Other("a script with a #! line"),
            [] => Self::Other("an empty file"),
            _ => Self::Other("a file of some other kind"),
        }
    }

    /// The OCI `os` an image whose entrypoint is of this kind records.
    pub fn oci_os(self) -> &'static str {
        match self {
            Self::Module => "wasip1",
            Self::Component => "wasip2",
            Self::Other(_) => "wasi",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert_eq!(WasmKind::sniff(b"\0asm\x01\0\0\0"), WasmKind::Module);
        assert_eq!(WasmKind::sniff(b"\0asm\x0d\0\x01\0"), WasmKind::Component);
        assert!(matches!(WasmKind::sniff(b"\x7fELF\x02"), WasmKind::Other(s) if s.contains("ELF")));
        assert!(matches!(WasmKind::sniff(b""), WasmKind::Other(_)));
    }
}
