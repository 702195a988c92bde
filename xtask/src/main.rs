//! `cargo xtask bundle <package> [--release]`: builds the `.clap` and `.vst3` bundles named in
//! `bundler.toml` into `target/bundled/`.
fn main() -> nice_plug_xtask::Result<()> {
    nice_plug_xtask::main()
}
