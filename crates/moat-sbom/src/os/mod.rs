//! OS package catalogers: dpkg, apk, rpm; and distribution detection.

pub mod apk;
pub mod dpkg;
pub mod release;
pub mod rpm;

use crate::Cataloger;

pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
    vec![
        Box::new(dpkg::Dpkg::default()),
        Box::new(apk::Apk),
        Box::new(rpm::Rpm),
    ]
}
