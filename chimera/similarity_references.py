"""Generic and off-brand texts that persona similarity calibrates against (chimera/persona_similarity.py).

What a persona's voice must stand out from: registers no influencer posts in (corporate, legal, technical, news,
academic, customer support), spam, sponsored plugs, and mostly social posts in voices and on topics of their own
(sport, gaming, finance, gadgets, fitness, travel, politics, cars, food, fashion, home), since posts are what
drafts resemble most. Several languages, because e5 is multilingual and so are drafts. For each persona, the
references her examples resemble as much as they resemble each other are on-brand for her and left out (a gadget
review, for a gadget reviewer); the median raw score of the rest is her off-brand anchor, so a few near her topic
barely move it. None of these texts is in the tests or benchmarks/persona_similarity.py, which measure on texts of
their own.
"""

from __future__ import annotations

REFERENCES: tuple[str, ...] = (
    # corporate
    "The company today announced record quarterly revenue driven by strong demand across all business segments.",
    "Management remains confident in its long-term strategy and will continue to invest in operational excellence.",
    "Das Unternehmen meldet für das dritte Quartal einen Umsatzanstieg von acht Prozent gegenüber dem Vorjahr.",
    "La société a finalisé l'acquisition de son concurrent pour un montant de 2,3 milliards d'euros.",
    # legal
    "This agreement shall be governed by and construed in accordance with the laws of the State of Delaware.",
    "The licensee shall not sublicense, transfer or assign any rights granted hereunder without prior consent.",
    "Der Mieter ist verpflichtet, die Nebenkosten monatlich im Voraus auf das angegebene Konto zu überweisen.",
    "El presente contrato entrará en vigor en la fecha de su firma y tendrá una duración de dos años.",
    # technical
    "To configure the service, set the environment variable and restart the server before running migrations.",
    "The function returns a list of records sorted by timestamp, or raises an error if the index is missing.",
    "Pour installer le paquet, exécutez la commande suivante puis redémarrez le terminal.",
    "Bir hata oluştu: bağlantı zaman aşımına uğradı, lütfen ağ ayarlarınızı kontrol edin.",  # noqa: RUF001
    # news and weather
    "Officials said the committee would review the proposal next month after consultations with stakeholders.",
    "Heavy rain is expected across the northern region on Tuesday, with temperatures falling later in the week.",
    "Die Bundesregierung hat am Mittwoch einen neuen Gesetzentwurf zur Reform der Rentenversicherung vorgelegt.",
    "Il governo ha approvato ieri sera il decreto sulle infrastrutture dopo una lunga riunione del consiglio.",
    "Pemerintah mengumumkan kenaikan harga bahan bakar mulai bulan depan di seluruh wilayah.",
    # academic
    "The results indicate a statistically significant correlation between the variables in the sample population.",
    "Further research is required to determine whether these findings generalize to other contexts.",
    "Os resultados do estudo sugerem uma relação entre a temperatura média e a produtividade agrícola.",
    # customer support and office mail
    "Please find attached the updated report; let me know if you have any questions regarding the figures.",
    "Customers may request a refund within thirty days of purchase by contacting our support team.",
    "Your ticket has been received and a member of our team will respond within two business days.",
    "Estimado cliente, le informamos de que su pedido ha sido enviado y llegará en un plazo de 3 a 5 días.",
    "Sehr geehrte Damen und Herren, anbei erhalten Sie die Rechnung für den Monat März.",
    # spam
    "Congratulations! You have been selected to receive a free gift card. Click here to claim your reward now.",
    "Make $5000 a week working from home, no experience needed, limited spots available, DM to join.",
    "Invest in our new token today and double your money in 30 days, guaranteed returns for early holders.",
    "Gana dinero rápido desde casa con nuestro sistema automático, resultados garantizados en una semana.",
    # sponsored plugs and hype: what an off-brand or hijacked influencer post most often is
    "Obsessed with this collagen powder, my skin glows and I dropped two dress sizes. Code GLOW15 for 15% off!",
    "Twenty percent off my favourite protein bars this weekend only, link in bio, use my code at checkout.",
    "Diese Vitamin-Gummies haben mein Leben verändert! Mit meinem Code SARA10 bekommt ihr 10 Prozent Rabatt.",
    "Altcoin season is here, this one is going to moon, get in before it pumps. Not financial advice.",
    "Booked this whole trip with my favourite travel app, use the link in my bio to save on your next holiday.",
    # social posts in other voices, on other topics
    "What a match! Two goals in the last five minutes and the title race is wide open again. Unbelievable scenes.",
    "Patch 4.2 finally nerfs the sniper rifle. Ranked is going to feel completely different this season.",
    "Benchmarked the new GPU: 18% faster than last gen at 4K, but it draws 450 W under load. Pricey upgrade.",
    "Leg day done: five sets of squats, new personal best on deadlifts. No excuses, see you at 6 am tomorrow.",
    "The interest rate decision sent bond yields higher and the dollar rallied against major currencies.",
    "Vote on Sunday! Our candidate will cut taxes, secure the border and bring jobs back to this district.",
    "Changed the brake pads and rotors myself this weekend, saved about 300 bucks compared to the garage quote.",
    "Heute Abend Derby im Stadion, die Stimmung in der Kurve ist jetzt schon unglaublich laut.",
    "Nouvelle mise à jour du jeu disponible : trois nouvelles cartes et un mode classé entièrement repensé.",
    "Bugün borsa sert düştü, yatırımcılar faiz kararını bekliyor.",  # noqa: RUF001
    "New personal record at the gym today: 140 kg bench press. Consistency beats motivation every single time.",
    "Sunrise from the infinity pool in our Maldives villa. Business class all the way, living my best life!",
    "BTC to 200k this cycle, mark my words. Stack sats, ignore the noise, diamond hands only.",
    "Hit Grandmaster in ranked last night after a 12 hour stream. Thanks chat, you are the best!",
    "Referee robbed us again. Third penalty denied this season. The league has to look at VAR.",
    "Unboxing the new flagship phone: 200 MP camera, 5000 mAh battery, 120 Hz display. Full review Friday.",
    "Just tuned the turbo on my project car, 420 hp at the wheels now. Dyno video dropping soon.",
    "Passive income tip: put your savings in index funds and let compound interest do the work. Not advice.",
    "Rise and grind. Your competition is working while you sleep. Wake up at 5, win the day.",
    "Mercury is in retrograde, so double-check your texts and do not sign anything this week.",
    "My startup just closed a seed round! Hiring engineers who want to disrupt logistics with AI.",
    "That finale was insane, I did not see the twist coming at all. Season 3 cannot come soon enough.",
    "Concert was unreal tonight, 60,000 people singing along. Best night of my life, no question.",
    "Open house this Saturday: three bedrooms, renovated kitchen, walking distance to the station. DM for details.",
    "Heute 25 km mit dem Rennrad gefahren, neuer Rekord am Berg. Morgen ist Ruhetag.",
    "Nouveau record personnel au marathon de Paris : 3h12 ! Merci à tous pour vos encouragements.",
    "¡Golazo en el último minuto! Este equipo nunca se rinde, vamos a por la liga.",
    "Mi nuevo canal de inversiones ya está activo: aprende a ganar con acciones y criptomonedas desde cero.",
    "Oggi ho provato la nuova console: grafica incredibile, ma i giochi costano troppo. Voto 7.",
    "Yeni telefonumun kamerası harika, gece çekimleri bile çok net. İnceleme videosu yakında kanalda!",  # noqa: RUF001
    "Liburan ke Bali kemarin seru banget, pantainya bersih dan sunset-nya luar biasa.",
    "Meu treino de hoje: 45 minutos de corrida e 30 de musculação. Foco total no verão!",
    # lifestyle posts in other voices (a persona whose topic this is leaves the ones close to her out)
    "Made a huge lasagna tonight with three cheeses and homemade ragu. Best comfort food ever, recipe in bio.",
    "This new burger place downtown is insane, double patty, truffle fries, totally worth the 40 minute queue.",
    "Meal prep Sunday: chicken, rice and broccoli for the whole week. Macros on point.",
    "Hoy cociné paella para toda la familia, con gambas y mejillones frescos del mercado.",
    "Obsessed with my new designer handbag, finally treated myself after months of saving. Worth every cent.",
    "Haul time! Ordered twelve new tops from the online sale, everything under ten euros. Try-on video tonight.",
    "Neue Herbstkollektion ist da: Mäntel, Stiefel und Strick in allen Farben, jetzt im Shop entdecken.",
    "Finally finished painting the living room sage green. New sofa arrives Thursday and I cannot wait.",
    "Baby's first steps today! My heart is so full, I cried the whole afternoon.",
    "My golden retriever learned to open the fridge. Send help and more cheese.",
    "Nouvelle routine beauté : sérum, crème hydratante et un peu de fond de teint, rien de plus.",
)
