//! `candle_pool::limit_spinning` sets candle's spin limit only where none is set. The only test
//! in its binary: it changes the process environment.

use finetune_kernels::runtime::candle_pool::{limit_spinning, SpinSetting, ENV, SPIN_LIMIT};

#[test]
fn sets_the_limit_once_and_keeps_a_users_value() {
    std::env::remove_var(ENV);
    assert_eq!(limit_spinning(), SpinSetting::Applied);
    assert_eq!(std::env::var(ENV).unwrap(), SPIN_LIMIT.to_string());
    std::env::set_var(ENV, "7");
    assert_eq!(limit_spinning(), SpinSetting::Kept);
    assert_eq!(std::env::var(ENV).unwrap(), "7");
}
