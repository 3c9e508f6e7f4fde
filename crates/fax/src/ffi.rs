//! The few spandsp 0.0.6 entry points a fax terminal needs (fax.h, t30.h, t30_api.h,
//! t30_logging.h, t38_terminal.h, t38_core.h), declared by hand: the structs stay opaque except `t30_stats_t`, which the
//! library fills in and whose layout (fifteen `int`s) is fixed for 0.0.6.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
pub struct FaxState {
    _private: [u8; 0],
}

#[repr(C)]
pub struct T30State {
    _private: [u8; 0],
}

/// `t30_stats_t` of spandsp 0.0.6.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct T30Stats {
    pub bit_rate: c_int,
    pub error_correcting_mode: c_int,
    pub pages_tx: c_int,
    pub pages_rx: c_int,
    pub pages_in_file: c_int,
    pub x_resolution: c_int,
    pub y_resolution: c_int,
    pub width: c_int,
    pub length: c_int,
    pub image_size: c_int,
    pub encoding: c_int,
    pub bad_rows: c_int,
    pub longest_bad_row_run: c_int,
    pub error_correcting_mode_retries: c_int,
    pub current_status: c_int,
}

#[repr(C)]
pub struct T38TerminalState {
    _private: [u8; 0],
}

#[repr(C)]
pub struct T38CoreState {
    _private: [u8; 0],
}

/// `t38_tx_packet_handler_t`: one IFP packet to send `count` times.
pub type T38TxHandler = unsafe extern "C" fn(
    s: *mut T38CoreState,
    user: *mut c_void,
    buf: *const u8,
    len: c_int,
    count: c_int,
) -> c_int;

pub type PhaseHandler =
    unsafe extern "C" fn(s: *mut T30State, user: *mut c_void, result: c_int) -> c_int;
pub type PhaseEHandler = unsafe extern "C" fn(s: *mut T30State, user: *mut c_void, code: c_int);

pub const T30_ERR_OK: c_int = 0;
pub const T30_SUPPORT_V27TER: c_int = 0x01;
pub const T30_SUPPORT_V29: c_int = 0x02;
pub const T30_SUPPORT_V17: c_int = 0x04;
pub const T30_SUPPORT_T4_1D_COMPRESSION: c_int = 0x02;
pub const T30_SUPPORT_T4_2D_COMPRESSION: c_int = 0x04;
pub const T30_SUPPORT_T6_COMPRESSION: c_int = 0x08;

/// `t38_packet_categories_e`.
pub const T38_PACKET_CATEGORY_INDICATOR: c_int = 0;
pub const T38_PACKET_CATEGORY_CONTROL_DATA: c_int = 1;
pub const T38_PACKET_CATEGORY_CONTROL_DATA_END: c_int = 2;
pub const T38_PACKET_CATEGORY_IMAGE_DATA: c_int = 3;
pub const T38_PACKET_CATEGORY_IMAGE_DATA_END: c_int = 4;
/// `t38_data_rate_management_types_e`.
pub const T38_DATA_RATE_MANAGEMENT_LOCAL_TCF: c_int = 1;
pub const T38_DATA_RATE_MANAGEMENT_TRANSFERRED_TCF: c_int = 2;

extern "C" {
    pub fn t38_terminal_init(
        s: *mut T38TerminalState,
        calling_party: c_int,
        tx_packet_handler: Option<T38TxHandler>,
        tx_packet_user_data: *mut c_void,
    ) -> *mut T38TerminalState;
    pub fn t38_terminal_free(s: *mut T38TerminalState) -> c_int;
    pub fn t38_terminal_send_timeout(s: *mut T38TerminalState, samples: c_int) -> c_int;
    pub fn t38_terminal_set_config(s: *mut T38TerminalState, config: c_int);
    pub fn t38_terminal_set_tep_mode(s: *mut T38TerminalState, use_tep: c_int);
    pub fn t38_terminal_set_fill_bit_removal(s: *mut T38TerminalState, remove: c_int);
    pub fn t38_terminal_get_t30_state(s: *mut T38TerminalState) -> *mut T30State;
    pub fn t38_terminal_get_t38_core_state(s: *mut T38TerminalState) -> *mut T38CoreState;
    pub fn t38_core_rx_ifp_packet(
        s: *mut T38CoreState,
        buf: *const u8,
        len: c_int,
        seq_no: u16,
    ) -> c_int;
    pub fn t38_set_t38_version(s: *mut T38CoreState, version: c_int);
    pub fn t38_set_max_datagram_size(s: *mut T38CoreState, size: c_int);
    pub fn t38_set_redundancy_control(s: *mut T38CoreState, category: c_int, setting: c_int);
    pub fn t38_set_data_rate_management_method(s: *mut T38CoreState, method: c_int);
    pub fn t38_set_fastest_image_data_rate(s: *mut T38CoreState, max_rate: c_int);

    pub fn fax_init(s: *mut FaxState, calling_party: c_int) -> *mut FaxState;
    pub fn fax_free(s: *mut FaxState) -> c_int;
    pub fn fax_rx(s: *mut FaxState, amp: *mut i16, len: c_int) -> c_int;
    pub fn fax_rx_fillin(s: *mut FaxState, len: c_int) -> c_int;
    pub fn fax_tx(s: *mut FaxState, amp: *mut i16, max_len: c_int) -> c_int;
    pub fn fax_set_transmit_on_idle(s: *mut FaxState, transmit_on_idle: c_int);
    pub fn fax_get_t30_state(s: *mut FaxState) -> *mut T30State;

    pub fn t30_set_tx_ident(s: *mut T30State, id: *const c_char) -> c_int;
    pub fn t30_get_rx_ident(s: *mut T30State) -> *const c_char;
    pub fn t30_set_tx_page_header_info(s: *mut T30State, info: *const c_char) -> c_int;
    pub fn t30_set_tx_file(
        s: *mut T30State,
        file: *const c_char,
        start_page: c_int,
        stop_page: c_int,
    );
    pub fn t30_set_rx_file(s: *mut T30State, file: *const c_char, stop_page: c_int);
    pub fn t30_set_ecm_capability(s: *mut T30State, enabled: c_int) -> c_int;
    pub fn t30_set_supported_modems(s: *mut T30State, modems: c_int) -> c_int;
    pub fn t30_set_supported_compressions(s: *mut T30State, compressions: c_int) -> c_int;
    pub fn t30_set_phase_d_handler(
        s: *mut T30State,
        handler: Option<PhaseHandler>,
        user: *mut c_void,
    );
    pub fn t30_set_phase_e_handler(
        s: *mut T30State,
        handler: Option<PhaseEHandler>,
        user: *mut c_void,
    );
    pub fn t30_get_transfer_statistics(s: *mut T30State, t: *mut T30Stats);
    pub fn t30_terminate(s: *mut T30State);
    pub fn t30_completion_code_to_str(result: c_int) -> *const c_char;
    pub fn t30_get_logging_state(s: *mut T30State) -> *mut c_void;
    pub fn span_log_set_level(s: *mut c_void, level: c_int) -> c_int;
    pub fn span_log_set_tag(s: *mut c_void, tag: *const c_char) -> c_int;
}
