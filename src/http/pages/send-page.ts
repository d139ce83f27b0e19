import type { Response } from 'express';

/** Answers an HTML page with this status. */
export function sendPage(res: Response, status: number, html: string): void {
  res.status(status).type('html').send(html);
}
