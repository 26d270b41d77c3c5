//! `cpgd`: a single-host CPG server. All the work is in `cpg_rs::server`.

use cpg_rs::server::{self, cli};

fn main() {
    match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(config)) => {
            if let Err(e) = server::run(*config) {
                eprintln!("cpgd: error: {e}");
                std::process::exit(1);
            }
        }
        Ok(cli::Command::Help) => print!("{}", cli::USAGE),
        Ok(cli::Command::Version) => println!("cpgd {}", env!("CARGO_PKG_VERSION")),
        Err(e) => {
            eprintln!("cpgd: {e}");
            std::process::exit(2);
        }
    }
}
