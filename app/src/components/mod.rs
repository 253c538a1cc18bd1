pub mod feedback;
pub mod icons;
pub mod install_button;
pub mod settings_layout;
pub mod top_nav;
