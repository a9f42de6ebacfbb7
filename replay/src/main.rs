//! `replay`: play, inspect, verify, export, search and merge gateway session
//! recordings. Works offline on files and directories of `*.cast.zst`.

mod files;
mod inspect;
mod play;
mod search;
mod timeline;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "replay",
    version,
    about = "Play, verify and search gateway session recordings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    V3,
    V2,
    Txt,
}

#[derive(Subcommand)]
enum Command {
    /// Play a recording in real time (space: pause, `.`: step, `]`: next marker, q: quit).
    Play {
        file: PathBuf,
        /// Playback speed factor.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Cap pauses between events at this many seconds.
        #[arg(long)]
        idle_limit: Option<f64>,
    },
    /// Print the output stream as text.
    Cat { file: PathBuf },
    /// Show metadata, duration, event counts and verification result.
    Info {
        file: PathBuf,
        #[command(flatten)]
        keys: files::KeyArgs,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Verify hash chains and signatures; exit 0 only if everything checks.
    Verify {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        keys: files::KeyArgs,
        /// Also fail recordings without a signed trailer (not closed).
        #[arg(long)]
        require_trailer: bool,
        #[command(flatten)]
        progress: files::ProgressArg,
    },
    /// Export to plain asciicast v3, v2, or a text transcript.
    Export {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "v3")]
        format: ExportFormat,
        /// Output file; `-` for stdout.
        #[arg(short, long, default_value = "-")]
        output: PathBuf,
    },
    /// Find events across recordings.
    Search(search::SearchArgs),
    /// Merge many sessions into one chronological incident view.
    Timeline(timeline::TimelineArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Play {
            file,
            speed,
            idle_limit,
        } => play::run(&file, speed, idle_limit).map(|()| true),
        Command::Cat { file } => inspect::cat(&file).map(|()| true),
        Command::Info { file, keys, format } => inspect::info(&file, &keys, format).map(|()| true),
        Command::Verify {
            paths,
            keys,
            require_trailer,
            progress,
        } => inspect::verify(&paths, &keys, require_trailer, progress.progress),
        Command::Export {
            file,
            format,
            output,
        } => inspect::export(&file, format, &output).map(|()| true),
        Command::Search(args) => search::run(&args).map(|()| true),
        Command::Timeline(args) => timeline::run(&args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            // A closed pipe (`replay search ... | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "replay: {e:#}");
            ExitCode::from(2)
        }
    }
}
