//! Build script: makes cargo rebuild the crate when a migration changes, because
//! `sqlx::migrate!` embeds the migration files at compile time and cargo cannot see that.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
