//! The words of changing one's own password (everyone's) and of the master giving a pump owner a
//! new one, in both languages. Kept apart from the main table, as the owner's words are.

/// The password words of one language.
pub struct PasswordText {
    /// The link to the page, and its title.
    pub change: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub current: &'static str,
    pub new: &'static str,
    pub again: &'static str,
    pub rule: &'static str,
    /// The two new passwords typed differ.
    pub flash_mismatch: &'static str,
    pub flash_changed: &'static str,
    /// The master's button on an owner's page, and its question.
    pub reset_owner: &'static str,
    pub confirm_reset_owner: &'static str,
    pub owner_help: &'static str,
}

impl PasswordText {
    /// A flash message's words by its key.
    pub fn flash(&self, key: &str) -> Option<&'static str> {
        Some(match key {
            "password_changed" => self.flash_changed,
            "password_mismatch" => self.flash_mismatch,
            _ => return None,
        })
    }
}

pub static EN: PasswordText = PasswordText {
    change: "Change password",
    title: "Change your password",
    intro: "Type the password you sign in with now, then the new one twice. Everywhere else you are signed in \
            (another browser, the app on another phone) is signed out; here you stay signed in.",
    current: "Current password",
    new: "New password",
    again: "New password again",
    rule: "At least 8 characters.",
    flash_mismatch: "The two new passwords are not the same. Type them again.",
    flash_changed: "Your password is changed. Everywhere else you were signed in is signed out.",
    reset_owner: "New password",
    confirm_reset_owner: "Make a new password for this pump owner? The old one stops working and they are signed out everywhere.",
    owner_help: "Give it to the pump owner now. It is not shown again.",
};

pub static BN: PasswordText = PasswordText {
    change: "পাসওয়ার্ড বদলান",
    title: "আপনার পাসওয়ার্ড বদলান",
    intro: "এখন যে পাসওয়ার্ড দিয়ে সাইন ইন করেন সেটি লিখুন, তারপর নতুনটি দুবার। অন্য যেখানে সাইন ইন করা আছে \
            (অন্য ব্রাউজার, অন্য ফোনের অ্যাপ) সেখান থেকে সাইন আউট হবে; এখানে সাইন ইন থাকবেন।",
    current: "বর্তমান পাসওয়ার্ড",
    new: "নতুন পাসওয়ার্ড",
    again: "নতুন পাসওয়ার্ড আবার",
    rule: "অন্তত ৮ অক্ষর।",
    flash_mismatch: "দুটি নতুন পাসওয়ার্ড এক নয়। আবার লিখুন।",
    flash_changed: "আপনার পাসওয়ার্ড বদলানো হয়েছে। অন্য যেখানে সাইন ইন ছিলেন সেখান থেকে সাইন আউট হয়েছে।",
    reset_owner: "নতুন পাসওয়ার্ড",
    confirm_reset_owner: "এই পাম্প মালিকের জন্য নতুন পাসওয়ার্ড তৈরি করবেন? পুরনোটি আর কাজ করবে না, আর তিনি সব জায়গা থেকে সাইন আউট হবেন।",
    owner_help: "এখনই পাম্প মালিককে দিন। এটি আর দেখানো হবে না।",
};
