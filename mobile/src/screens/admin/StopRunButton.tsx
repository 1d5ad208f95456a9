import { useState } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import { Button } from '../../ui/components';
import { useConfirm } from '../../ui/useConfirm';

/**
 * The admin's stop (POST /api/admin/motor/stop) of the run shown (`entryId`), with a second tap to
 * confirm that names whose run it stops.
 */
export function StopRunButton({
  name,
  entryId,
  onDone,
}: {
  name: string;
  entryId: string;
  onDone: (message: { kind: 'error' | 'success'; text: string }) => void;
}) {
  const { api } = useSession();
  const i18n = useI18n();
  const live = useLive();
  // About this run: when the next one starts, the first tap is forgotten.
  const confirm = useConfirm(entryId);
  const [busy, setBusy] = useState(false);

  const press = async () => {
    if (!confirm.tap()) return;
    setBusy(true);
    try {
      const ended = await api.adminStop(entryId);
      onDone({ kind: 'success', text: i18n.t.runStopped(ended.userName || name) });
    } catch (err) {
      onDone({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
      live.refresh();
    }
  };

  return (
    <Button
      big
      kind="danger"
      testID="admin-stop"
      label={confirm.isArmed() ? i18n.t.confirmStopRun(name) : i18n.t.stopRun}
      busy={busy}
      onPress={() => void press()}
    />
  );
}
