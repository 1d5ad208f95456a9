import { useEffect, useState } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import { Button } from '../../ui/components';

/** The admin's stop (POST /api/admin/motor/stop), with a second tap to confirm. */
export function StopRunButton({
  name,
  onDone,
}: {
  name: string;
  onDone: (message: { kind: 'error' | 'success'; text: string }) => void;
}) {
  const { api } = useSession();
  const i18n = useI18n();
  const live = useLive();
  const [armed, setArmed] = useState(false);
  const [busy, setBusy] = useState(false);

  // An armed button that is not tapped again disarms itself.
  useEffect(() => {
    if (!armed) return;
    const timer = setTimeout(() => setArmed(false), 5000);
    return () => clearTimeout(timer);
  }, [armed]);

  const press = async () => {
    if (!armed) {
      setArmed(true);
      return;
    }
    setArmed(false);
    setBusy(true);
    try {
      const ended = await api.adminStop();
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
      label={armed ? i18n.t.confirmStopRun : i18n.t.stopRun}
      busy={busy}
      onPress={() => void press()}
    />
  );
}
