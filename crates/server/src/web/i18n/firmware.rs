//! The words of the master's firmware page (releases, upload, rollout) and of a device's update
//! state, in both languages. Kept apart from the main table, as the owner's words are.

use super::Table;

/// The firmware words of one language.
pub struct FirmwareText {
    pub nav: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub releases_title: &'static str,
    pub no_releases: &'static str,
    pub version: &'static str,
    pub size: &'static str,
    /// `{0}`: a number of bytes.
    pub bytes: &'static str,
    pub sha256: &'static str,
    pub published: &'static str,
    pub rollout: &'static str,
    pub rollout_nobody: &'static str,
    /// `{0}`: a percentage.
    pub rollout_share: &'static str,
    /// `{0}`: the pump owner.
    pub rollout_first: &'static str,
    pub running: &'static str,
    pub offered: &'static str,
    /// `{0}` devices of `{1}` run it.
    pub running_of: &'static str,
    /// The same when `{1}`, the number of all devices, is 1.
    pub running_of_one: &'static str,
    pub upload_title: &'static str,
    pub upload_help: &'static str,
    pub image_file: &'static str,
    pub signature_file: &'static str,
    pub version_help: &'static str,
    pub upload: &'static str,
    pub no_key: &'static str,
    pub rollout_title: &'static str,
    pub rollout_help: &'static str,
    pub release: &'static str,
    pub to_whom: &'static str,
    pub to_share: &'static str,
    pub to_owner_first: &'static str,
    pub percent: &'static str,
    pub percent_help: &'static str,
    pub confirm: &'static str,
    pub set_rollout: &'static str,
    /// `{0}`: the version, `{1}`: its size in words.
    pub flash_published: &'static str,
    /// `{0}`: the version, `{1}`: who gets it, in words.
    pub flash_rollout: &'static str,
    pub flash_confirm: &'static str,
    /// A device's update state (`updateState`), `{0}`: the version meant for it, `{1}`: the share downloaded.
    pub states: Table,
    /// The API's refusals of an upload, by code, in words.
    pub errors: Table,
    /// A refused field's rule, by the field's name in the API.
    pub field_hints: Table,
}

impl FirmwareText {
    /// The words of a message this page's forms leave for the next page.
    pub fn flash(&self, key: &str) -> Option<&'static str> {
        Some(match key {
            "firmware_published" => self.flash_published,
            "rollout_set" => self.flash_rollout,
            "rollout_confirm" => self.flash_confirm,
            _ => return None,
        })
    }
}

pub static EN: FirmwareText = FirmwareText {
    nav: "Firmware",
    title: "Firmware updates",
    intro: "Devices get a new image over the air, only while their motor is off, and go back to the old one if the new one cannot reach the server.",
    releases_title: "Releases",
    no_releases: "No firmware published yet.",
    version: "Version",
    size: "Size",
    bytes: "{0} bytes",
    sha256: "SHA-256",
    published: "Published",
    rollout: "Meant for",
    rollout_nobody: "Nobody yet",
    rollout_share: "{0}% of all devices",
    rollout_first: "{0} first",
    running: "Running it",
    offered: "Offered",
    running_of: "{0} of {1} devices run it",
    running_of_one: "{0} of {1} device runs it",
    upload_title: "Publish a new image",
    upload_help: "Sign the image first, on the computer that keeps the signing key. It writes IMAGE.sig beside the image:",
    image_file: "Image file (.bin)",
    signature_file: "Signature file (.sig)",
    version_help: "The version you signed it as, like 1.6.0.",
    upload: "Publish",
    no_key: "This server has no firmware key (PUMPPILOT_FIRMWARE_PUBLIC_KEY), so it refuses every image.",
    rollout_title: "Roll out",
    rollout_help: "Start with one pump owner's devices, then a share of all devices, then 100%. The same devices stay in as the share grows.",
    release: "Release",
    to_whom: "Offer it to",
    to_share: "A share of all devices",
    to_owner_first: "One pump owner first",
    percent: "Share of all devices (%)",
    percent_help: "For a share: 0 to 100 (0 holds it back from everyone). One pump owner first gets all of that owner's devices.",
    confirm: "Yes, offer this release to these devices",
    set_rollout: "Set the rollout",
    flash_published: "Firmware {0} is published ({1}). It is meant for nobody until you roll it out.",
    flash_rollout: "Firmware {0} is now meant for: {1}.",
    flash_confirm: "Tick the box to confirm the rollout. Nothing was changed.",
    states: &[
        ("OFFERED", "update {0} offered"),
        ("DOWNLOADING", "downloading {0}: {1}%"),
        ("FAILED", "update {0} failed: it went back to the old one"),
        ("UPDATED", "up to date"),
    ],
    errors: &[
        (
            "NO_FIRMWARE_KEY",
            "This server has no firmware key: set PUMPPILOT_FIRMWARE_PUBLIC_KEY and restart it. Nothing was published.",
        ),
        (
            "VERSION_EXISTS",
            "That version is published already. Sign the new image with a new version. Nothing was published.",
        ),
        (
            "PAYLOAD_TOO_LARGE",
            "The image is larger than a device's update slot (1,966,080 bytes). Nothing was published.",
        ),
    ],
    field_hints: &[
        (
            "signature",
            "The signature does not match this image, this version and the server's firmware key. Sign the image with pumppilot firmware sign --version and this same version, and pick the .sig file it wrote. Nothing was published.",
        ),
        ("version", "Version: 1 to 32 letters, digits and . - + _, as you signed it."),
        ("image", "Pick the image file (.bin)."),
        ("percent", "Share: a whole number from 0 to 100."),
        ("adminId", "Pick a pump owner."),
    ],
};

pub static BN: FirmwareText = FirmwareText {
    nav: "ফার্মওয়্যার",
    title: "ফার্মওয়্যার আপডেট",
    intro: "যন্ত্র বাতাসের মাধ্যমে নতুন ইমেজ পায়, শুধু মোটর বন্ধ থাকলে; নতুনটি সার্ভারে পৌঁছাতে না পারলে আগেরটিতে ফিরে যায়।",
    releases_title: "রিলিজ",
    no_releases: "এখনও কোনো ফার্মওয়্যার প্রকাশ হয়নি।",
    version: "ভার্সন",
    size: "আকার",
    bytes: "{0} বাইট",
    sha256: "SHA-256",
    published: "প্রকাশ",
    rollout: "কাদের জন্য",
    rollout_nobody: "এখনও কারও জন্য নয়",
    rollout_share: "সব যন্ত্রের {0}%",
    rollout_first: "প্রথমে {0}",
    running: "চলছে",
    offered: "দেওয়া হয়েছে",
    running_of: "{1}টি যন্ত্রের মধ্যে {0}টিতে চলছে",
    running_of_one: "{1}টি যন্ত্রের মধ্যে {0}টিতে চলছে",
    upload_title: "নতুন ইমেজ প্রকাশ করুন",
    upload_help: "আগে ইমেজে সই করুন, যে কম্পিউটারে সই করার কী আছে সেখানে। এটি ইমেজের পাশে IMAGE.sig লেখে:",
    image_file: "ইমেজ ফাইল (.bin)",
    signature_file: "সই ফাইল (.sig)",
    version_help: "যে ভার্সনে সই করেছেন, যেমন 1.6.0।",
    upload: "প্রকাশ করুন",
    no_key: "এই সার্ভারে ফার্মওয়্যার কী (PUMPPILOT_FIRMWARE_PUBLIC_KEY) নেই, তাই এটি সব ইমেজ ফিরিয়ে দেয়।",
    rollout_title: "ছড়িয়ে দিন",
    rollout_help: "প্রথমে একজন পাম্প মালিকের যন্ত্র, তারপর সব যন্ত্রের একটি অংশ, তারপর ১০০%। অংশ বাড়লেও একই যন্ত্রগুলো থাকে।",
    release: "রিলিজ",
    to_whom: "কাকে দেবেন",
    to_share: "সব যন্ত্রের একটি অংশ",
    to_owner_first: "প্রথমে একজন পাম্প মালিক",
    percent: "সব যন্ত্রের অংশ (%)",
    percent_help: "অংশের জন্য: ০ থেকে ১০০ (০ দিলে কেউ পায় না)। প্রথমে একজন পাম্প মালিক বাছলে তাঁর সব যন্ত্র পায়।",
    confirm: "হ্যাঁ, এই রিলিজ এই যন্ত্রগুলোকে দিন",
    set_rollout: "ছড়ানো ঠিক করুন",
    flash_published: "ফার্মওয়্যার {0} প্রকাশ হয়েছে ({1})। ছড়িয়ে না দেওয়া পর্যন্ত এটি কারও জন্য নয়।",
    flash_rollout: "ফার্মওয়্যার {0} এখন যাদের জন্য: {1}।",
    flash_confirm: "ছড়ানো নিশ্চিত করতে বাক্সে টিক দিন। কিছুই বদলায়নি।",
    states: &[
        ("OFFERED", "আপডেট {0} দেওয়া হয়েছে"),
        ("DOWNLOADING", "{0} নামছে: {1}%"),
        ("FAILED", "আপডেট {0} ব্যর্থ: আগেরটিতে ফিরে গেছে"),
        ("UPDATED", "হালনাগাদ"),
    ],
    errors: &[
        (
            "NO_FIRMWARE_KEY",
            "এই সার্ভারে ফার্মওয়্যার কী নেই: PUMPPILOT_FIRMWARE_PUBLIC_KEY ঠিক করে সার্ভার আবার চালু করুন। কিছুই প্রকাশ হয়নি।",
        ),
        ("VERSION_EXISTS", "এই ভার্সন আগেই প্রকাশ হয়েছে। নতুন ইমেজে নতুন ভার্সন দিয়ে সই করুন। কিছুই প্রকাশ হয়নি।"),
        ("PAYLOAD_TOO_LARGE", "ইমেজটি যন্ত্রের আপডেট স্লটের (১৯,৬৬,০৮০ বাইট) চেয়ে বড়। কিছুই প্রকাশ হয়নি।"),
    ],
    field_hints: &[
        (
            "signature",
            "সইটি এই ইমেজ, এই ভার্সন ও সার্ভারের ফার্মওয়্যার কী-র সাথে মেলে না। pumppilot firmware sign --version দিয়ে এই একই ভার্সনে ইমেজে সই করুন, আর যে .sig ফাইল লিখেছে সেটি বাছুন। কিছুই প্রকাশ হয়নি।",
        ),
        ("version", "ভার্সন: ১ থেকে ৩২টি অক্ষর, অঙ্ক ও . - + _, যেভাবে সই করেছেন।"),
        ("image", "ইমেজ ফাইল (.bin) বাছুন।"),
        ("percent", "অংশ: ০ থেকে ১০০-এর মধ্যে একটি পূর্ণ সংখ্যা।"),
        ("adminId", "একজন পাম্প মালিক বাছুন।"),
    ],
};
