//! `bench`: runs the benchmarks and writes `BENCHMARKS.md` (see `osc_timecode_tests::bench`).
//! Start it with `cargo xtask bench` (`--quick` for a short run).

fn main() -> std::process::ExitCode {
    osc_timecode_tests::bench::main()
}
