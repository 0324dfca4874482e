//! `sim`: the simulator served on its own, for rehearsals with `--base-url`.

use std::io::Write;

use crate::cli::hiargs;
use crate::cli::lowargs::SimArgs;
use crate::errors::Result;
use crate::exit;
use crate::provider::sim;

/// Serves the simulator until Ctrl-C.
pub(super) fn sim(args: SimArgs) -> Result<u8> {
    let config = hiargs::sim_config(&args)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let key = config.key.clone();
        let journal = config.journal.clone();
        let simulator = sim::start(&args.addr, config).await?;
        // Written with errors ignored: whoever started the simulator may stop reading its output.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "stepcall simulator listening on {}", simulator.url());
        let _ = writeln!(out, "  no real phone call is made; API key: {key}");
        if let Some(journal) = journal {
            let _ = writeln!(out, "  journal: {}", journal.display());
        }
        let url = simulator.url();
        let _ = writeln!(out, "  try: STEPONEAI_API_KEY={key} stepcall call 13800138000 \"Say hello\" --wait --base-url {url}");
        let _ = out.flush();
        drop(out);
        let _ = tokio::signal::ctrl_c().await;
        simulator.stop().await;
        Ok(exit::SUCCESS)
    })
}
