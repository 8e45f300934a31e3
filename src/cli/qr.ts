// The QR code of an otpauth:// URI, for a terminal. Loaded only when one is shown.
import qrcode from 'qrcode-terminal';

export function printQr(uri: string): Promise<void> {
  return new Promise((resolve) => {
    qrcode.generate(uri, { small: true }, (qr: string) => {
      process.stdout.write(qr + '\n');
      resolve();
    });
  });
}
