//! `wrun completion SHELL`: a completion script for bash, zsh, fish or
//! PowerShell, generated from the command line's own definition.

use anyhow::Result;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

/// Generate the autocompletion script for the specified shell
#[derive(Debug, Args)]
#[command(after_help = "Load it for this session, for example:\n  \
    source <(wrun completion bash)\n  \
    wrun completion fish | source\n\
    or write it where your shell loads completions from.")]
pub struct CompletionCommand {
    /// The shell: bash, zsh, fish or powershell
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

impl CompletionCommand {
    /// Writes the script to stdout. It needs no state root and no daemon.
    pub fn execute(self) -> Result<u8> {
        let mut cmd = super::Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "wrun", &mut std::io::stdout());
        Ok(0)
    }
}
