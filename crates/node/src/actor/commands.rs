//! Commands on a call, from the API and from scripts: operations (play, collect, record,
//! detect, denoise) go to the call's session (ops.rs); `calling.transfer` and
//! `calling.user_event` are handled here, `calling.refer` in refer.rs (shared with SWML
//! `sip_refer`); what is not built answers 501.

use control::command::{AudioDirection, TransferDest, TransferParams};
use control::session::Origin;
use control::{CallCommand, CallStatus, CommandOk, ControlError};

use crate::actor::CallActor;

impl CallActor {
    /// Every command other than `update`/`calling.end`, from the API (`Origin::Rest`) or a
    /// script: operations go to the call's session (ops.rs), the rest is handled here.
    pub(crate) async fn on_call_command(
        &mut self,
        status: CallStatus,
        command: CallCommand,
        origin: Origin,
    ) -> Result<CommandOk, ControlError> {
        if command.needs_answered_call() && status != CallStatus::Answered {
            return Err(ControlError::invalid_state(
                "invalid_state",
                "the call is not answered",
            ));
        }
        let control_id = command.control_id().map(str::to_owned);
        let mut extra = Vec::new();
        if let CallCommand::Play(p) = &command {
            if p.direction != AudioDirection::Listen {
                // Playing "as the party" (to the bridge peer and recordings only) needs a
                // second mix point in the media graph that does not exist yet.
                return Err(ControlError::NotImplemented {
                    command: format!("calling.play with direction {}", p.direction.as_str()),
                });
            }
        }
        match command {
            CallCommand::Transfer(p) => self.rest_transfer(p).await?,
            CallCommand::Disconnect(_) => self.disconnect().await?,
            CallCommand::Refer(p) => self.start_refer(p, false)?,
            CallCommand::UserEvent(p) => {
                self.user_event(serde_json::Value::Object(p.event)).await;
            }
            CallCommand::AiStop(_) => self.ai_stop().await?,
            CallCommand::AiMessage(p) => self.ai_message(p).await?,
            CallCommand::AiHold(p) => self.ai_hold(p.timeout, p.prompt).await?,
            CallCommand::AiUnhold(p) => self.ai_unhold(p.prompt).await?,
            CallCommand::LiveTranscribe(p) => self.live_transcribe(p).await?,
            CallCommand::AiSidecar(p) => self.ai_sidecar(*p).await?,
            CallCommand::AiSidecarPoke(p) => self.sidecar_poke(p.text)?,
            CallCommand::AiSidecarStop(_) => self.stop_sidecar("api_stop").await?,
            CallCommand::AiSidecarAsk(p) => {
                let ask_id = self.sidecar_ask(p.text).await?;
                extra.push(("ask_id".to_string(), serde_json::json!(ask_id)));
            }
            CallCommand::AiSidecarStatus(_) => {
                let status = self.sidecar_status()?;
                extra.push(("result".to_string(), serde_json::json!(status)));
            }
            command @ (CallCommand::Play(_)
            | CallCommand::PlayPause(_)
            | CallCommand::PlayResume(_)
            | CallCommand::PlayStop(_)
            | CallCommand::PlayVolume(_)
            | CallCommand::Collect(_)
            | CallCommand::CollectStop(_)
            | CallCommand::CollectStartInputTimers(_)
            | CallCommand::Record(_)
            | CallCommand::RecordPause(_)
            | CallCommand::RecordResume(_)
            | CallCommand::RecordStop(_)
            | CallCommand::Detect(_)
            | CallCommand::DetectStop(_)
            | CallCommand::Denoise(_)
            | CallCommand::DenoiseStop(_)
            | CallCommand::Tap(_)
            | CallCommand::TapStop(_)
            | CallCommand::Stream(_)
            | CallCommand::StreamStop(_)
            | CallCommand::Transcribe(_)
            | CallCommand::TranscribeStop(_)
            | CallCommand::SendFaxStop(_)
            | CallCommand::ReceiveFaxStop(_)) => self.op_command(command, origin).await?,
            // What the node cannot do yet answers 501 naming the command; never a fake success.
            CallCommand::LiveTranslate(p) => self.live_translate(*p).await?,
            CallCommand::Update(_) | CallCommand::End(_) => {
                return Err(ControlError::NotImplemented {
                    command: command.name().to_owned(),
                })
            }
        }
        let mut ok = CommandOk::leg(self.snapshot_record().leg());
        ok.control_id = control_id;
        ok.extra = extra;
        Ok(ok)
    }

    /// `calling.transfer`: a SWML URL or inline document replaces the running flow; a SIP URI
    /// or phone number is dialled and bridged (bridge.rs).
    async fn rest_transfer(&mut self, p: TransferParams) -> Result<(), ControlError> {
        if let Some(url) = p.dest.swml_url() {
            self.fetch_document(
                crate::actor::DocPurpose::Replace,
                url.to_owned(),
                None,
                control::HttpMethod::Post,
            );
            return Ok(());
        }
        match p.dest {
            TransferDest::Document(doc) => {
                let doc = crate::fetch::load_document("dest", doc)?;
                self.replace_script(doc).await;
                Ok(())
            }
            TransferDest::Address(address) => self.transfer_to_address(&address).await,
        }
    }
}
