//! `plugctl completions SHELL` and `plugctl man [--dir DIR]`: generated from
//! the clap definition by clap's own generators, so they cannot drift from
//! the command line they describe.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Exit;
use crate::args::Cli;

/// Writes the completion script for `shell`.
pub(crate) fn completions(out: &mut dyn Write, shell: Shell) -> io::Result<Exit> {
    clap_complete::generate(shell, &mut Cli::command(), "plugctl", out);
    Ok(Exit::Ok)
}

/// Writes plugctl(1) to `out`, or, with `dir`, plugctl.1 and one page per
/// subcommand into it (their paths on `out`).
pub(crate) fn man(
    out: &mut dyn Write,
    err: &mut dyn Write,
    dir: Option<&Path>,
) -> io::Result<Exit> {
    let Some(dir) = dir else {
        clap_mangen::Man::new(Cli::command()).render(out)?;
        return Ok(Exit::Ok);
    };
    if let Err(e) = clap_mangen::generate_to(Cli::command(), dir) {
        writeln!(err, "writing the manual pages into {}: {e}", dir.display())?;
        return Ok(Exit::Problem);
    }
    let mut pages: Vec<String> = std::iter::once("plugctl".to_owned())
        .chain(
            Cli::command()
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| format!("plugctl-{}", c.get_name())),
        )
        .collect();
    pages.sort();
    for page in pages {
        writeln!(out, "{}", dir.join(format!("{page}.1")).display())?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand and every long option, as the clap definition has
    /// them.
    fn vocabulary() -> (Vec<String>, Vec<String>) {
        let cli = Cli::command();
        let commands: Vec<String> = cli
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        let options: Vec<String> = cli
            .get_arguments()
            .chain(cli.get_subcommands().flat_map(|c| c.get_arguments()))
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        (commands, options)
    }

    #[test]
    fn every_shells_completions_know_every_subcommand_and_option() {
        let (commands, options) = vocabulary();
        assert!(commands.len() >= 9, "{commands:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            assert_eq!(completions(&mut out, shell).unwrap(), Exit::Ok);
            let text = String::from_utf8(out).unwrap();
            for word in commands.iter().chain(&options) {
                // fish spells long options `-l probe`.
                let fish = word.strip_prefix("--").map(|l| format!("-l {l}"));
                assert!(
                    text.contains(word.as_str()) || fish.is_some_and(|f| text.contains(&f)),
                    "{shell:?} completions lack {word}"
                );
            }
        }
    }

    #[test]
    fn the_manual_page_lists_every_subcommand_and_global_option() {
        let (commands, _) = vocabulary();
        let mut out = Vec::new();
        let mut err = Vec::new();
        assert_eq!(man(&mut out, &mut err, None).unwrap(), Exit::Ok);
        let page = String::from_utf8(out).unwrap();
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq"),
            "roff: {}",
            &page[..80]
        );
        assert!(page.contains(".TH plugctl 1"), "{page}");
        for command in &commands {
            assert!(
                page.contains(&format!("plugctl\\-{command}(1)")),
                "{command} missing"
            );
        }
        for option in ["socket\\-dir", "spec\\-dir", "json", "timeout", "verbose"] {
            assert!(
                page.contains(&format!("\\-\\-{option}")),
                "{option} missing"
            );
        }
        assert!(page.contains("Exit status: 0 success"), "{page}");
    }
}
