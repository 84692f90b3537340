/** Class labels of the scorer models, in output order (kept apart from models.ts so score names load without the converter). */

/** Emotion classes of `emotion` (Oarriaga's FER-2013 classifier). */
export const EMOTION_LABELS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] as const;
/** nsfwjs classes. */
export const NSFW_LABELS = ['drawing', 'hentai', 'neutral', 'porn', 'sexy'] as const;
